//! Starting a scavenge and following its progress.

use crate::client::Client;
use crate::error::Error;
use evenire_proto::v1 as pb;
use tokio_stream::{Stream, StreamExt};

/// Where a scavenge is, and what it has freed so far (in a dry run, would free): the
/// contract's `ScavengeResponse`, whose last one has `done` set.
pub type ScavengeReport = pb::ScavengeResponse;

impl Client {
    /// Starts a scavenge (needs the `admin` role): the server rewrites its sealed
    /// segments without what deletes and stream rules removed, and reports after each
    /// one. `dry_run` changes nothing and reports what it would free;
    /// `bytes_per_second` caps its disk traffic (None: the server's setting). The
    /// scavenge goes on if the stream is dropped.
    pub async fn scavenge(
        &self,
        dry_run: bool,
        bytes_per_second: Option<u64>,
    ) -> Result<impl Stream<Item = Result<ScavengeReport, Error>> + use<>, Error> {
        let request = pb::ScavengeRequest {
            dry_run,
            rate_limit_bytes_per_second: bytes_per_second.unwrap_or(0),
        };
        let reports = self.inner.clone().scavenge(request).await?.into_inner();
        Ok(reports.map(|report| report.map_err(Error::from)))
    }

    /// Runs a scavenge to its end and returns its last report.
    pub async fn scavenge_to_end(
        &self,
        dry_run: bool,
        bytes_per_second: Option<u64>,
    ) -> Result<ScavengeReport, Error> {
        let reports = self.scavenge(dry_run, bytes_per_second).await?;
        tokio::pin!(reports);
        let mut last = None;
        while let Some(report) = reports.next().await {
            last = Some(report?);
        }
        last.filter(|r| r.done).ok_or_else(|| {
            Error::BadResponse("the scavenge's reports ended before it was done".into())
        })
    }
}
