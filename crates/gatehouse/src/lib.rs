//! The `gatehouse` binary's library: configuration, wiring, admin client,
//! output, the demo and the throwaway PostgreSQL used by the demo and tests.

pub mod access;
pub mod admin;
pub mod approvals;
pub mod certs;
pub mod config;
pub mod demo;
pub mod evidence;
pub mod fleet;
pub mod fleet_cli;
pub mod identity;
pub mod kubeconfig;
pub mod manpage;
pub mod masking;
pub mod notify;
pub mod output;
pub mod pgcluster;
pub mod policy_cli;
pub mod policy_tools;
pub mod serve;
pub mod ssh_cli;
