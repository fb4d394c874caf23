//! pullgate: a node-local CRI proxy in front of containerd that gates `PullImage`
//! on Notary Project signature verification. See DESIGN.md for the module map.
#![forbid(unsafe_code)]
// No function over 100 lines (clippy.toml), tests excepted.
#![warn(clippy::too_many_lines)]

pub mod app;
pub mod cache;
pub mod clients;
pub mod clock;
pub mod config;
pub mod cri;
pub mod doctor;
pub mod envelope;
pub mod gate;
pub mod images_cmd;
pub mod intercept;
pub mod metrics;
pub mod oci;
pub mod pki;
pub mod policy;
pub mod policy_dir;
pub mod reference;
pub mod registry;
pub mod revocation;
pub mod upstream;
pub mod verdict;
pub mod verify;
