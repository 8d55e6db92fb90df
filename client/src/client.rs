//! The connection and its calls.

use crate::error::Error;
use crate::types::{
    AppendResult, Direction, EventData, ExpectedVersion, LastStream, ReadAllFrom, ReadFrom,
    RecordedEvent, StreamId,
};
use evenire_proto::client::event_store_service_client::EventStoreServiceClient;
use evenire_proto::v1 as pb;
use evenire_proto::{EventBatch, WireEvent};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_stream::Stream;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

use crate::connect::{ClientBuilder, Credentials};

/// The generated client, with the credentials every call carries.
pub(crate) type Inner = EventStoreServiceClient<InterceptedService<Channel, Credentials>>;

/// Largest response message accepted: room for the server's largest event (4 MiB of
/// data and metadata by default) with its envelope.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// The largest HTTP/2 frame the server may send: a read's whole message (at most about
/// 256 KiB) in one frame instead of sixteen of the default 16 KiB, each of which costs
/// both sides a pass through HTTP/2 and a wake-up.
pub(crate) const MAX_FRAME_BYTES: u32 = 1 << 20;

/// A connection to an Evenire server. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Inner,
}

impl Client {
    /// Connects to `uri`, such as `http://127.0.0.1:5243`, in clear and without
    /// credentials; [`Client::builder`] for TLS and tokens.
    pub async fn connect(uri: impl Into<String>) -> Result<Self, Error> {
        Self::builder(uri).connect().await
    }

    /// Settings for a connection to `uri`: `https://` for TLS, with a CA, a client
    /// certificate or a token as the server asks.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), evenire_client::Error> {
    /// let ca = std::fs::read("ca.pem").expect("the CA's certificate");
    /// let client = evenire_client::Client::builder("https://events.internal:5243")
    ///     .ca_certificate(ca)
    ///     .token(std::env::var("EVENIRE_TOKEN").unwrap_or_default())
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(uri: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(uri.into())
    }

    /// A client over an existing channel, without credentials.
    pub fn from_channel(channel: Channel) -> Self {
        Self::with_credentials(channel, Credentials::default())
    }

    pub(crate) fn with_credentials(channel: Channel, credentials: Credentials) -> Self {
        Client {
            inner: EventStoreServiceClient::with_interceptor(channel, credentials)
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
        }
    }

    /// Appends `events` to `stream` if it meets `expected`, atomically: all of them or
    /// none. Returns once they are durable on the server.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: impl IntoIterator<Item = EventData>,
    ) -> Result<AppendResult, Error> {
        let request = pb::AppendRequest {
            stream: Some(stream.to_proto()),
            expected_version: Some(expected.to_proto()),
            events: events.into_iter().map(EventData::into_proto).collect(),
        };
        let response = self.inner.clone().append(request).await?.into_inner();
        Ok(AppendResult {
            version: response.version,
            position: response.position,
        })
    }

    /// Reads `stream` from `from` in `direction`, at most `max_count` events. Fails
    /// with [`Error::NotFound`] for a stream never written.
    pub async fn read(
        &self,
        stream: &StreamId,
        from: ReadFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> Result<EventStream, Error> {
        let request = pb::ReadRequest {
            stream: Some(stream.to_proto()),
            from: Some(from.to_proto()),
            direction: direction.to_proto().into(),
            max_count,
        };
        let responses = self.inner.clone().read(request).await?.into_inner();
        Ok(EventStream::new(responses))
    }

    /// Reads every event of the store in position order, from `from` in `direction`,
    /// at most `max_count` events.
    pub async fn read_all(
        &self,
        from: ReadAllFrom,
        direction: Direction,
        max_count: Option<u64>,
    ) -> Result<EventStream, Error> {
        let request = pb::ReadAllRequest {
            from: Some(from.to_proto()),
            direction: direction.to_proto().into(),
            max_count,
        };
        let responses = self.inner.clone().read_all(request).await?.into_inner();
        Ok(EventStream::new(responses))
    }
}

type Batches = Pin<Box<dyn Stream<Item = Result<EventBatch, tonic::Status>> + Send>>;

/// The events of a read, one at a time, though the server sends them in batches.
pub struct EventStream {
    responses: Batches,
    /// The rest of the last batch received, taken from it without copying.
    buffered: std::vec::IntoIter<WireEvent>,
    last_stream: LastStream,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    fn new(
        responses: impl Stream<Item = Result<EventBatch, tonic::Status>> + Send + 'static,
    ) -> Self {
        EventStream {
            responses: Box::pin(responses),
            buffered: Vec::new().into_iter(),
            last_stream: LastStream::default(),
        }
    }
}

impl Stream for EventStream {
    type Item = Result<RecordedEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.buffered.next() {
                return Poll::Ready(Some(
                    RecordedEvent::from_wire(event, &mut this.last_stream)
                        .map_err(Error::BadResponse),
                ));
            }
            match this.responses.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(batch))) => this.buffered = batch.events.into_iter(),
                Poll::Ready(Some(Err(status))) => return Poll::Ready(Some(Err(status.into()))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl From<tonic::codegen::http::uri::InvalidUri> for Error {
    fn from(e: tonic::codegen::http::uri::InvalidUri) -> Self {
        Error::InvalidUri(e.to_string())
    }
}
