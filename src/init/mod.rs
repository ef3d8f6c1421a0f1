//! The s6-linux-init-maker: generates the init tree and stage 1.
pub mod cli;
