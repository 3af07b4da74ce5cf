//! The library behind the `vigil` command, so tests drive the same code in process.

pub mod audit;
pub mod stdout;
