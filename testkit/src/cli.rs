//! Running the `pullgate` binary the way the CLI tests do: commands with their
//! output, and the pass-through server with a metrics listener.
