//! pullgate: a node-local CRI proxy in front of containerd that gates `PullImage`
//! on Notary Project signature verification. See DESIGN.md for the module map.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod cri;
pub mod intercept;
pub mod pki;
pub mod upstream;
