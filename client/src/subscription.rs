//! Subscriptions: the history, then live events, as one `Stream` that by default
//! survives a dropped connection or a server restart by subscribing again after the
//! last position (or version) it delivered.

use crate::client::Client;
use crate::error::Error;
use crate::types::{RecordedEvent, StreamId};
use evenire_proto::v1 as pb;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Code, Status};

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// With the first event: the whole history, then live.
    Start,
    /// With the first event committed after the subscription starts: live only.
    End,
    /// After this position (subscription to all) or version (to a stream): a
    /// checkpoint kept from a previous subscription.
    After(u64),
}

/// A server-side filter for a subscription. An event passes when its stream type
/// matches (or no stream type is given) and its event type matches (or no event type
/// is given); a type matches a name exactly or a prefix by its start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    /// Exact stream types.
    pub stream_types: Vec<String>,
    /// Stream type prefixes.
    pub stream_type_prefixes: Vec<String>,
    /// Exact event types.
    pub event_types: Vec<String>,
    /// Event type prefixes.
    pub event_type_prefixes: Vec<String>,
}

impl SubscriptionFilter {
    /// Only streams of this type.
    pub fn stream_type(mut self, stream_type: impl Into<String>) -> Self {
        self.stream_types.push(stream_type.into());
        self
    }

    /// Only streams whose type starts with `prefix`.
    pub fn stream_type_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_type_prefixes.push(prefix.into());
        self
    }

    /// Only events of this type.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_types.push(event_type.into());
        self
    }

    /// Only events whose type starts with `prefix`.
    pub fn event_type_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.event_type_prefixes.push(prefix.into());
        self
    }

    fn to_proto(&self) -> pb::SubscriptionFilter {
        pb::SubscriptionFilter {
            stream_types: self.stream_types.clone(),
            stream_type_prefixes: self.stream_type_prefixes.clone(),
            event_types: self.event_types.clone(),
            event_type_prefixes: self.event_type_prefixes.clone(),
        }
    }
}

/// How a subscription behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Server-side filter (subscriptions to all; a stream subscription uses only the
    /// event types).
    pub filter: SubscriptionFilter,
    /// A filtered subscription to all reports a checkpoint after scanning this many
    /// events without a match; 0 leaves it to the server (1,000).
    pub checkpoint_interval: u32,
    /// When the connection drops or the server restarts (`UNAVAILABLE`), subscribe
    /// again after the last position or version delivered, retrying with backoff (up
    /// to 2 s between tries) for as long as the subscription is held. On by default;
    /// off, the subscription ends with the error.
    pub resume: bool,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            filter: SubscriptionFilter::default(),
            checkpoint_interval: 0,
            resume: true,
        }
    }
}

impl SubscribeOptions {
    /// The defaults with this filter.
    pub fn filtered(filter: SubscriptionFilter) -> Self {
        SubscribeOptions {
            filter,
            ..Self::default()
        }
    }
}

/// One step of a subscription. More kinds may come: match with a `_` arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionMessage {
    /// The next event.
    Event(RecordedEvent),
    /// Everything committed before this point has been delivered; what follows is
    /// live. Sent again after each resume. For a subscription to all, the last position
    /// scanned (None while the store is empty).
    CaughtUp {
        /// Resume after this position to continue from here.
        position: Option<u64>,
    },
    /// A filtered subscription to all scanned this far without a match.
    Checkpoint {
        /// Resume after this position to continue from here.
        position: u64,
    },
    /// The call dropped (the server restarted, the network went) and the subscription
    /// is subscribing again after what it delivered, with backoff: nothing is lost or
    /// repeated. For whoever shows progress ("reconnecting..."); a `CaughtUp` follows
    /// once it is back.
    Reconnecting {
        /// Why the call dropped.
        reason: String,
    },
}

/// What a subscription follows.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    All,
    Stream(StreamId),
}

/// A running subscription: a `Stream` of [`SubscriptionMessage`]s that ends only with
/// an error (or never). Drop it to cancel.
#[derive(Debug)]
pub struct Subscription {
    receiver: mpsc::Receiver<Result<SubscriptionMessage, Error>>,
}

impl Stream for Subscription {
    type Item = Result<SubscriptionMessage, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(2);

impl Client {
    /// Subscribes to every event of the store: the history from `from`, then live.
    pub async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        self.start_subscription(Target::All, from, options).await
    }

    /// Subscribes to one stream, which need not exist yet: its history from `from`
    /// (a version), then live.
    pub async fn subscribe(
        &self,
        stream: &StreamId,
        from: SubscribeFrom,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        self.start_subscription(Target::Stream(stream.clone()), from, options)
            .await
    }

    async fn start_subscription(
        &self,
        target: Target,
        from: SubscribeFrom,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        // The first call is made here so that a refused request fails the call itself.
        let responses = self.open_subscription(&target, from, &options).await?;
        let (sender, receiver) = mpsc::channel(64);
        let follower = Follower {
            client: self.clone(),
            target,
            from,
            options,
            sender,
        };
        tokio::spawn(follower.run(responses));
        Ok(Subscription { receiver })
    }

    async fn open_subscription(
        &self,
        target: &Target,
        from: SubscribeFrom,
        options: &SubscribeOptions,
    ) -> Result<tonic::Streaming<pb::SubscribeResponse>, Status> {
        use pb::subscribe_request::Target as PbTarget;
        let target = match target {
            Target::All => PbTarget::All(pb::SubscribeAll {
                from: Some(match from {
                    SubscribeFrom::Start => {
                        pb::subscribe_all::From::Origin(pb::SubscribeOrigin::Start.into())
                    }
                    SubscribeFrom::End => {
                        pb::subscribe_all::From::Origin(pb::SubscribeOrigin::End.into())
                    }
                    SubscribeFrom::After(p) => pb::subscribe_all::From::AfterPosition(p),
                }),
            }),
            Target::Stream(stream) => PbTarget::Stream(pb::SubscribeStream {
                stream: Some(stream.to_proto()),
                from: Some(match from {
                    SubscribeFrom::Start => {
                        pb::subscribe_stream::From::Origin(pb::SubscribeOrigin::Start.into())
                    }
                    SubscribeFrom::End => {
                        pb::subscribe_stream::From::Origin(pb::SubscribeOrigin::End.into())
                    }
                    SubscribeFrom::After(v) => pb::subscribe_stream::From::AfterVersion(v),
                }),
            }),
        };
        let request = pb::SubscribeRequest {
            target: Some(target),
            filter: Some(options.filter.to_proto()),
            checkpoint_interval: options.checkpoint_interval,
        };
        Ok(self.inner.clone().subscribe(request).await?.into_inner())
    }
}

/// The task behind a [`Subscription`]: forwards messages, remembers where it is, and
/// subscribes again after a drop.
struct Follower {
    client: Client,
    target: Target,
    /// Where a new call would start: after the last thing delivered.
    from: SubscribeFrom,
    options: SubscribeOptions,
    sender: mpsc::Sender<Result<SubscriptionMessage, Error>>,
}

impl Follower {
    async fn run(mut self, mut responses: tonic::Streaming<pb::SubscribeResponse>) {
        loop {
            let failure = match self.forward(&mut responses).await {
                Some(failure) => failure,
                None => return,
            };
            if !self.options.resume || !resumable(&failure) {
                let _ = self.sender.send(Err(failure.into())).await;
                return;
            }
            let reconnecting = SubscriptionMessage::Reconnecting {
                reason: crate::Error::from(failure).to_string(),
            };
            if self.sender.send(Ok(reconnecting)).await.is_err() {
                return;
            }
            match self.reopen().await {
                Some(reopened) => responses = reopened,
                None => return,
            }
        }
    }

    /// Forwards messages until the call fails (returned) or the subscriber goes (None).
    async fn forward(
        &mut self,
        responses: &mut tonic::Streaming<pb::SubscribeResponse>,
    ) -> Option<Status> {
        loop {
            let next = tokio::select! {
                () = self.sender.closed() => return None,
                next = responses.message() => next,
            };
            let response = match next {
                Ok(Some(response)) => response,
                Ok(None) => return Some(Status::unavailable("the server ended the subscription")),
                Err(status) => return Some(status),
            };
            for message in self.messages(response) {
                let message = match message {
                    Ok(message) => message,
                    Err(bad) => {
                        let _ = self.sender.send(Err(bad)).await;
                        return None;
                    }
                };
                self.advance(&message);
                if self.sender.send(Ok(message)).await.is_err() {
                    return None;
                }
            }
        }
    }

    fn messages(&self, response: pb::SubscribeResponse) -> Vec<Result<SubscriptionMessage, Error>> {
        use pb::subscribe_response::Message;
        match response.message {
            Some(Message::Events(events)) => events
                .events
                .into_iter()
                .map(|e| {
                    RecordedEvent::from_proto(e)
                        .map(SubscriptionMessage::Event)
                        .map_err(Error::BadResponse)
                })
                .collect(),
            Some(Message::CaughtUp(caught_up)) => vec![Ok(SubscriptionMessage::CaughtUp {
                position: caught_up.position,
            })],
            Some(Message::Checkpoint(checkpoint)) => vec![Ok(SubscriptionMessage::Checkpoint {
                position: checkpoint.position,
            })],
            None => vec![Err(Error::BadResponse("empty subscription message".into()))],
        }
    }

    /// Moves the resume point past `message`.
    fn advance(&mut self, message: &SubscriptionMessage) {
        let after = match (&self.target, message) {
            (Target::All, SubscriptionMessage::Event(e)) => Some(e.position),
            (Target::Stream(_), SubscriptionMessage::Event(e)) => Some(e.version),
            (Target::All, SubscriptionMessage::CaughtUp { position }) => *position,
            (Target::All, SubscriptionMessage::Checkpoint { position }) => Some(*position),
            (Target::Stream(_), _) | (_, SubscriptionMessage::Reconnecting { .. }) => None,
        };
        if let Some(after) = after {
            self.from = SubscribeFrom::After(after);
        }
    }

    /// Subscribes again with backoff; None when the subscriber went or the server
    /// refused for good (the error is delivered).
    async fn reopen(&mut self) -> Option<tonic::Streaming<pb::SubscribeResponse>> {
        let mut delay = FIRST_RETRY;
        loop {
            tokio::select! {
                () = self.sender.closed() => return None,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RETRY);
            match self
                .client
                .open_subscription(&self.target, self.from, &self.options)
                .await
            {
                Ok(responses) => return Some(responses),
                Err(status) if resumable(&status) => continue,
                Err(status) => {
                    let _ = self.sender.send(Err(status.into())).await;
                    return None;
                }
            }
        }
    }
}

/// Whether a failure is the connection's or the server's going, rather than a refusal.
fn resumable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled
    )
}
