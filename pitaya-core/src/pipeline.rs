//! Pipelines: async hooks that run before and after handlers, Go Pitaya's
//! `HandlerHooks` and `RemoteHooks`.
//!
//! A **before hook** takes the [`Request`] and returns a future of the
//! request to go on with: an error rejects the call (the error is the reply,
//! the handler and the hooks after it do not run, nor do the after hooks),
//! a different request replaces it (its body and context are what the
//! handler gets). An **after hook** takes the call's [`Context`] (its route
//! tells what ran) and the [`HandlerResult`], and returns a future of the
//! result to send. Hooks run in order; `push_front_*` puts a hook before
//! the others, as Go's `PushFront`.
//!
//! An app has two pipelines: the handler pipeline
//! ([`AppBuilder::before_handler`](crate::app::AppBuilder::before_handler)),
//! run around the client handlers of the server and, on a frontend, around
//! the client messages it forwards to other server types; and the remote
//! pipeline
//! ([`AppBuilder::before_remote`](crate::app::AppBuilder::before_remote)),
//! run around the `#[remote]` methods the server serves.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use pitaya_core::{Context, PitayaError, SerializerKind};
//! use pitaya_core::handler::Request;
//! use pitaya_core::pipeline::Pipelines;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut pipelines = Pipelines::default();
//! pipelines.push_before(|request: Request| async move {
//!     tokio::time::sleep(Duration::from_millis(1)).await; // e.g. a database
//!     if request.body().is_empty() {
//!         return Err(PitayaError::new("GAME-400", "empty body"));
//!     }
//!     Ok(request)
//! });
//! pipelines.push_after(|ctx: Context, result| async move {
//!     assert_eq!(ctx.route(), "room.join");
//!     result.map(|_| Some(Bytes::from_static(b"rewritten")))
//! });
//!
//! let handler = |_: Request| async { Ok(Some(Bytes::from_static(b"reply"))) };
//! let ok = Request::remote(Context::new("room.join"), Bytes::from_static(b"x"), SerializerKind::Json);
//! assert_eq!(pipelines.run(ok, handler).await.unwrap().unwrap(), "rewritten");
//! let empty = Request::remote(Context::new("room.join"), Bytes::new(), SerializerKind::Json);
//! assert_eq!(pipelines.run(empty, handler).await.unwrap_err().code, "GAME-400");
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;

use crate::PitayaError;
use crate::context::Context;
use crate::error::codes;
use crate::handler::{HandlerResult, Request};

/// The boxed future a hook returns, once stored in a [`Pipelines`].
pub type HookFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

type BeforeHook = Arc<dyn Fn(Request) -> HookFuture<Result<Request, PitayaError>> + Send + Sync>;
type AfterHook = Arc<dyn Fn(Context, HandlerResult) -> HookFuture<HandlerResult> + Send + Sync>;

/// Before and after hooks, run in order.
///
/// Cheap when empty: running an empty pipeline allocates nothing and calls
/// the handler directly.
#[derive(Clone, Default)]
pub struct Pipelines {
    before: Vec<BeforeHook>,
    after: Vec<AfterHook>,
}

impl std::fmt::Debug for Pipelines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipelines")
            .field("before", &self.before.len())
            .field("after", &self.after.len())
            .finish()
    }
}

fn box_before<F, Fut>(hook: F) -> BeforeHook
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Request, PitayaError>> + Send + 'static,
{
    Arc::new(move |request| Box::pin(hook(request)))
}

fn box_after<F, Fut>(hook: F) -> AfterHook
where
    F: Fn(Context, HandlerResult) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    Arc::new(move |context, result| Box::pin(hook(context, result)))
}

impl Pipelines {
    /// Adds a before hook, run after those already there (Go's
    /// `BeforeHandler.PushBack`). A synchronous check can return
    /// `std::future::ready(...)`.
    pub fn push_before<F, Fut>(&mut self, hook: F)
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Request, PitayaError>> + Send + 'static,
    {
        self.before.push(box_before(hook));
    }

    /// Adds a before hook, run before those already there (Go's
    /// `BeforeHandler.PushFront`).
    pub fn push_front_before<F, Fut>(&mut self, hook: F)
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Request, PitayaError>> + Send + 'static,
    {
        self.before.insert(0, box_before(hook));
    }

    /// Adds an after hook, run after those already there (Go's
    /// `AfterHandler.PushBack`).
    pub fn push_after<F, Fut>(&mut self, hook: F)
    where
        F: Fn(Context, HandlerResult) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.after.push(box_after(hook));
    }

    /// Adds an after hook, run before those already there (Go's
    /// `AfterHandler.PushFront`).
    pub fn push_front_after<F, Fut>(&mut self, hook: F)
    where
        F: Fn(Context, HandlerResult) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.after.insert(0, box_after(hook));
    }

    /// Removes every before and after hook (Go's `Clear` on both channels).
    pub fn clear(&mut self) {
        self.before.clear();
        self.after.clear();
    }

    /// Removes the before hooks only.
    pub fn clear_before(&mut self) {
        self.before.clear();
    }

    /// Removes the after hooks only.
    pub fn clear_after(&mut self) {
        self.after.clear();
    }

    /// Whether there are no hooks.
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }

    /// How many before hooks there are.
    pub fn before_len(&self) -> usize {
        self.before.len()
    }

    /// How many after hooks there are.
    pub fn after_len(&self) -> usize {
        self.after.len()
    }

    /// Runs the before hooks in order; the first error stops them.
    ///
    /// # Errors
    /// The error of the hook that rejected the request.
    pub async fn before(&self, mut request: Request) -> Result<Request, PitayaError> {
        for hook in &self.before {
            request = hook(request).await?;
        }
        Ok(request)
    }

    /// Runs the after hooks in order, each on the result of the one before.
    pub async fn after(&self, context: &Context, mut result: HandlerResult) -> HandlerResult {
        for hook in &self.after {
            result = hook(context.clone(), result).await;
        }
        result
    }

    /// Runs the before hooks, `handler` on the request they let through,
    /// then the after hooks on its result. A rejection is the result as
    /// is: neither `handler` nor the after hooks run. With no hooks this
    /// is `handler(request)`.
    pub async fn run<F, Fut>(&self, request: Request, handler: F) -> HandlerResult
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = HandlerResult>,
    {
        self.run_with(request, std::convert::identity, handler)
            .await
    }

    /// [`run`](Self::run), with a before-hook rejection turned into what
    /// `rejected` makes of it.
    pub(crate) async fn run_with<F, Fut>(
        &self,
        request: Request,
        rejected: impl FnOnce(PitayaError) -> PitayaError,
        handler: F,
    ) -> HandlerResult
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = HandlerResult>,
    {
        if self.is_empty() {
            return handler(request).await;
        }
        let request = match self.before(request).await {
            Ok(request) => request,
            Err(err) => {
                tracing::debug!(code = %err.code, error = %err.msg, "broken pipeline");
                return Err(rejected(err));
            }
        };
        if self.after.is_empty() {
            return handler(request).await;
        }
        let context = request.context().clone();
        let result = handler(request).await;
        self.after(&context, result).await
    }
}

/// Go's answer to a remote whose before hook failed: `PIT-500` with the
/// hook's message (its code and metadata are dropped).
pub(crate) fn remote_rejection(err: PitayaError) -> PitayaError {
    PitayaError::new(codes::INTERNAL, err.msg)
}

/// Runs `call` (hooks and handler: user code), turning a panic into a
/// `PIT-500` for this call only.
pub(crate) async fn catch_panics(
    route: &str,
    call: impl Future<Output = HandlerResult>,
) -> HandlerResult {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            tracing::error!(%route, panic = %what, "handler or pipeline panicked");
            Err(PitayaError::new(
                codes::INTERNAL,
                "internal error: the handler panicked",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::SerializerKind;

    fn request(route: &str, body: &'static [u8]) -> Request {
        Request::remote(
            Context::new(route),
            Bytes::from_static(body),
            SerializerKind::Json,
        )
    }

    /// A handler answering with its request's body.
    async fn echo(request: Request) -> HandlerResult {
        Ok(Some(request.body().clone()))
    }

    type Log = Arc<Mutex<Vec<String>>>;

    fn logging_before(pipelines: &mut Pipelines, log: &Log, name: &'static str, front: bool) {
        let log = log.clone();
        let hook = move |request: Request| {
            let log = log.clone();
            async move {
                tokio::task::yield_now().await;
                log.lock().unwrap().push(format!("before {name}"));
                Ok(request)
            }
        };
        if front {
            pipelines.push_front_before(hook);
        } else {
            pipelines.push_before(hook);
        }
    }

    fn logging_after(pipelines: &mut Pipelines, log: &Log, name: &'static str, front: bool) {
        let log = log.clone();
        let hook = move |_: Context, result: HandlerResult| {
            let log = log.clone();
            async move {
                tokio::task::yield_now().await;
                log.lock().unwrap().push(format!("after {name}"));
                result
            }
        };
        if front {
            pipelines.push_front_after(hook);
        } else {
            pipelines.push_after(hook);
        }
    }

    #[tokio::test]
    async fn hooks_run_in_order_and_push_front_goes_first() {
        let log = Log::default();
        let mut pipelines = Pipelines::default();
        logging_before(&mut pipelines, &log, "b", false);
        logging_before(&mut pipelines, &log, "c", false);
        logging_before(&mut pipelines, &log, "a", true);
        logging_after(&mut pipelines, &log, "y", false);
        logging_after(&mut pipelines, &log, "z", false);
        logging_after(&mut pipelines, &log, "x", true);
        assert_eq!((pipelines.before_len(), pipelines.after_len()), (3, 3));
        let reply = pipelines.run(request("r.m", b"hi"), echo).await.unwrap();
        assert_eq!(reply.unwrap(), "hi");
        assert_eq!(
            *log.lock().unwrap(),
            [
                "before a", "before b", "before c", "after x", "after y", "after z"
            ]
        );
    }

    #[tokio::test]
    async fn clear_removes_hooks() {
        let log = Log::default();
        let mut pipelines = Pipelines::default();
        logging_before(&mut pipelines, &log, "a", false);
        logging_after(&mut pipelines, &log, "z", false);
        let mut only_after = pipelines.clone();
        only_after.clear_before();
        assert_eq!((only_after.before_len(), only_after.after_len()), (0, 1));
        let mut only_before = pipelines.clone();
        only_before.clear_after();
        assert_eq!((only_before.before_len(), only_before.after_len()), (1, 0));
        pipelines.clear();
        assert!(pipelines.is_empty());
        pipelines.run(request("r.m", b"x"), echo).await.unwrap();
        assert!(log.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_awaiting_before_hook_rejects_and_stops_everything_after_it() {
        let log = Log::default();
        let mut pipelines = Pipelines::default();
        pipelines.push_before(|request: Request| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if request.body().as_ref() == b"bad" {
                Err(PitayaError::new("AUTH-401", "no token"))
            } else {
                Ok(request)
            }
        });
        logging_before(&mut pipelines, &log, "second", false);
        logging_after(&mut pipelines, &log, "after", false);
        let ran = Arc::new(Mutex::new(false));
        let handler = |request: Request| {
            let ran = ran.clone();
            async move {
                *ran.lock().unwrap() = true;
                echo(request).await
            }
        };
        let started = tokio::time::Instant::now();
        let err = pipelines
            .run(request("r.m", b"bad"), handler)
            .await
            .unwrap_err();
        assert_eq!(err.code, "AUTH-401");
        assert!(started.elapsed() >= Duration::from_secs(1), "it awaited");
        assert!(!*ran.lock().unwrap(), "the handler did not run");
        assert!(log.lock().unwrap().is_empty(), "nor the other hooks");

        let reply = pipelines.run(request("r.m", b"ok"), handler).await;
        assert_eq!(reply.unwrap().unwrap(), "ok");
        assert!(*ran.lock().unwrap());
        assert_eq!(*log.lock().unwrap(), ["before second", "after after"]);
    }

    #[tokio::test]
    async fn a_before_hook_replaces_the_request_and_after_hooks_see_its_context() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut pipelines = Pipelines::default();
        // Waits for a value from elsewhere (a channel), then rewrites.
        pipelines.push_before(move |request: Request| {
            let rx = rx.clone();
            async move {
                let player = rx.lock().await.recv().await.unwrap();
                let context = request.context().with_value("player", player);
                Ok(Request::remote(
                    context,
                    Bytes::from_static(b"replaced"),
                    request.serializer(),
                ))
            }
        });
        pipelines.push_after(|context: Context, result: HandlerResult| async move {
            let player = context
                .get("player")
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            let body = result?.unwrap_or_default();
            let text = format!(
                "{}:{player}:{}",
                context.route(),
                String::from_utf8_lossy(&body)
            );
            Ok(Some(Bytes::from(text)))
        });
        let call = pipelines.run(request("room.join", b"original"), echo);
        tx.send("ana").unwrap();
        assert_eq!(call.await.unwrap().unwrap(), "room.join:ana:replaced");
    }

    #[tokio::test]
    async fn after_hooks_see_and_change_errors() {
        let mut pipelines = Pipelines::default();
        pipelines.push_after(|_: Context, result: HandlerResult| async move {
            match result {
                Err(err) if err.code == "GAME-001" => Ok(Some(Bytes::from_static(b"recovered"))),
                other => other,
            }
        });
        let failing = |_: Request| async { Err(PitayaError::new("GAME-001", "boom")) };
        let reply = pipelines.run(request("r.m", b""), failing).await;
        assert_eq!(reply.unwrap().unwrap(), "recovered");
    }

    #[tokio::test]
    async fn remote_rejections_become_pit_500_with_the_message() {
        let mut pipelines = Pipelines::default();
        pipelines.push_before(|_: Request| {
            std::future::ready(Err(
                PitayaError::new("AUTH-403", "no remotes for you").with_metadata("k", "v")
            ))
        });
        let err = pipelines
            .run_with(request("r.m", b""), remote_rejection, echo)
            .await
            .unwrap_err();
        assert_eq!(err, PitayaError::new(codes::INTERNAL, "no remotes for you"));
    }

    #[tokio::test]
    async fn panics_fail_the_call_only() {
        let mut pipelines = Pipelines::default();
        pipelines.push_before(|_: Request| async move {
            if true {
                panic!("hook exploded");
            }
            Err(PitayaError::new("X", "unreachable"))
        });
        let err = catch_panics("r.m", pipelines.run(request("r.m", b""), echo))
            .await
            .unwrap_err();
        assert_eq!(err.code, codes::INTERNAL);
    }
}
