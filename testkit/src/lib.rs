//! What Evenire's tests, benchmarks and fuzz targets share, so that each exists once:
//!
//! - [`process`]: the `evenire-server` binary started as a child on 127.0.0.1:0;
//! - [`durability`]: the check of a log against what clients sent and were told;
//! - [`crash`]: the kill -9 harness (`server/tests/crash_recovery.rs` runs a few
//!   cycles, `evenire-bench --crash-cycles N` the long mode);
//! - [`net`]: gRPC channels and raw connections from another loopback address, for
//!   tests of per-address limits;
//! - [`soak`]: minutes of normal clients, alone and beside hostile ones, with the
//!   server's memory sampled (`evenire-bench --soak-seconds`, `server/tests/soak.rs`);
//! - [`files`]: every file under a directory, for tests that damage what a server left;
//! - [`rng`]: a seeded generator, so a failing randomised run replays from its seed.
//!
//! The in-process server of the end-to-end tests stays in `tests/common`, beside the
//! list of backends those tests run against.

pub mod crash;
pub mod durability;
pub mod files;
pub mod net;
pub mod process;
pub mod rng;
pub mod soak;
pub mod tls;

pub use rng::Rng;
