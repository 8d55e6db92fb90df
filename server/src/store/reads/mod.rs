//! Reading the log back: records through the cache, reads of a stream or of `$all`
//! batch by batch, and subscriptions that catch up and then follow commits.

pub mod read;
pub mod reader;
mod recent;
pub mod subscription;
