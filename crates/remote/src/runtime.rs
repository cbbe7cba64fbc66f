//! One async runtime for the network backends whose client libraries are async.
//!
//! The [`lifeboat_repo::Backend`] trait is synchronous (the engine drives it from plain threads), so
//! an async client runs its futures on this process-wide runtime: [`block_on`] from any thread
//! that is not itself a runtime worker, [`spawn`] for work that goes on in the background
//! (pipelined writes, read-ahead). Two worker threads are enough: the work is I/O-bound.
//! Any backend may use it (it is compiled when a feature that needs it is on).

use std::future::Future;
use std::io;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};

fn runtime() -> io::Result<&'static Runtime> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lifeboat-net")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| io::Error::other(format!("cannot start the network runtime: {e}")))
}

/// Runs a future to completion from synchronous code (not from a runtime worker).
pub fn block_on<F: Future>(f: F) -> io::Result<F::Output> {
    Ok(runtime()?.block_on(f))
}

/// Starts a future in the background.
pub fn spawn<F>(f: F) -> io::Result<tokio::task::JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(runtime()?.spawn(f))
}
