//! Accepting connections and serving HTTP/1.1 on them, with the server's own time limits.
//!
//! `axum::serve` has no header or idle timeouts, so a client could hold a connection open for
//! ever by sending half a request head, or nothing. Here every connection has a watchdog that
//! knows its phase: *idle* (no request in progress: closed after the idle timeout, counted from
//! the last byte written, or, while an answer waits for a slow reader's window, after the longer
//! stall allowance), *head* (the first bytes of a request arrived: the head must be complete
//! within the header timeout) and *busy* (a request is being served: the upload deadline and
//! the handler own the time, except that an answer nobody reads for the stall allowance ends).
//! Shutdown is graceful: no new connections, requests in flight finish.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower_service::Service;

/// How long a connection may spend in each phase.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    /// How long an answer may sit unsent because the client reads it slowly (the allowance a
    /// slow phone gets for its upload, the other way round).
    pub stalled: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each connection holds a receiver; when all are dropped every connection has ended.
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            router: router.clone(),
            peer,
            timeouts,
            stop: stop_rx.clone(),
            done: done_rx.clone(),
        };
        tokio::spawn(connection.run(stream));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
}

/// Where a connection is, for its watchdog.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// No request in progress since this instant.
    Idle(Instant),
    /// A request head began arriving at this instant.
    Head(Instant),
    /// This many requests are being served.
    Busy(usize),
}

/// A connection's phase, shared by its reader, its service and its watchdog.
///
/// The watchdog is woken only when a deadline comes closer than the one it sleeps for (a
/// request head starting on an idle connection whose idle deadline is further away); while a
/// request is served it re-checks now and then. So a busy keep-alive connection costs no
/// wake-ups per request.
struct Activity {
    state: Mutex<State>,
    changed: Notify,
    header_timeout: Duration,
}

struct State {
    phase: Phase,
    /// When the watchdog will next look.
    armed: Instant,
    /// The last write found the client's receive window full: an answer is still going out.
    sending: bool,
    /// When bytes last left.
    wrote_at: Instant,
}

impl Activity {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request head is complete: the handler has it.
    fn begin(&self) {
        let mut state = self.state();
        state.phase = match state.phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Idle(_) | Phase::Head(_) => Phase::Busy(1),
        };
    }

    /// A response was sent (or abandoned).
    fn end(&self) {
        let mut state = self.state();
        state.phase = match state.phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
    }

    /// Bytes arrived; on an idle connection they start a request head.
    fn bytes_read(&self) {
        let mut state = self.state();
        if let Phase::Idle(_) = state.phase {
            let now = Instant::now();
            state.phase = Phase::Head(now);
            if now + self.header_timeout < state.armed {
                drop(state);
                self.changed.notify_one();
            }
        }
    }

    /// A write went through (`progress`) or found no room. A response body is handed over
    /// before it is all written, so a large answer to a slow phone still goes out while no
    /// request is in progress: that is not idleness, and the idle clock restarts with every
    /// byte that leaves.
    fn wrote(&self, progress: bool) {
        let mut state = self.state();
        state.sending = !progress;
        if progress {
            let now = Instant::now();
            state.wrote_at = now;
            state.phase = match state.phase {
                Phase::Idle(_) => Phase::Idle(now),
                // The next request came while the last answer still goes out (pipelining):
                // its head is timed from the answer's last byte.
                Phase::Head(_) => Phase::Head(now),
                busy => busy,
            };
        }
    }

    /// When the watchdog should look next, and whether the connection has overstayed.
    fn next_look(&self, timeouts: Timeouts) -> (Instant, bool) {
        let now = Instant::now();
        let mut state = self.state();
        let deadline = match state.phase {
            // The kernel wakes a blocked writer only once a good part of its buffer drains,
            // which at 2G speeds can take far longer than the idle timeout.
            Phase::Idle(since) if state.sending => since + timeouts.stalled,
            Phase::Idle(since) => since + timeouts.idle,
            Phase::Head(since) => since + timeouts.header,
            // An answer that a client has stopped reading ends too.
            Phase::Busy(_) if state.sending => state.wrote_at + timeouts.stalled,
            // A request ends without a wake-up: look again within the shorter timeout.
            Phase::Busy(_) => now + timeouts.header.min(timeouts.idle),
        };
        let expired = deadline <= now;
        state.armed = deadline;
        (deadline, expired)
    }
}

struct Connection {
    router: Router,
    peer: SocketAddr,
    timeouts: Timeouts,
    stop: watch::Receiver<bool>,
    /// Dropped when the connection ends; the server waits for all of them at shutdown.
    done: watch::Receiver<()>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let activity = Arc::new(Activity {
            state: Mutex::new(State {
                phase: Phase::Idle(Instant::now()),
                armed: Instant::now(),
                sending: false,
                wrote_at: Instant::now(),
            }),
            changed: Notify::new(),
            header_timeout: self.timeouts.header,
        });
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let service = ConnectionService {
            router: self.router.clone(),
            peer: self.peer,
            activity: activity.clone(),
        };
        let connection = http1::Builder::new().serve_connection(io, service);
        tokio::pin!(connection);
        let mut stopping = *self.stop.borrow();
        if stopping {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            let (look, overstayed) = activity.next_look(self.timeouts);
            if overstayed {
                tracing::debug!(peer = %self.peer, "closing a connection that took too long");
                break;
            }
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, peer = %self.peer, "connection ended with an error");
                    }
                    break;
                }
                () = activity.changed.notified() => {}
                () = tokio::time::sleep_until(look) => {}
                changed = self.stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_ok() {
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        drop(self.done);
    }
}

/// The router as hyper calls it for one connection: adds the peer address (for login
/// throttling) and tells the watchdog when a request starts and when its response is done.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity.begin();
        let guard = InFlight(self.activity.clone());
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let mut router = self.router.clone();
        Box::pin(async move {
            let response = match router.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(|body| TrackedBody {
                body,
                _guard: guard,
            }))
        })
    }
}

/// Ends a request's busy phase when dropped: after its response body was sent, or when the
/// client went away first.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that holds its request's place in the busy phase until hyper drops it.
struct TrackedBody {
    body: Body,
    _guard: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, telling the watchdog when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, bytes);
        self.activity.wrote(!polled.is_pending());
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(!polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
