//! Reading a form's submissions on one thread while two others turn pages into output, in order.
//!
//! An export is CPU work on every record (parse, clean, write); one reader thread pages through
//! the store and hands pages to two workers in turn, and the caller takes the workers' results
//! back in the same turn order, so output keeps arrival order. Channels are bounded (memory stays
//! flat), and when the caller stops (the client left) every thread sees a closed channel and ends.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::store::{Listed, Store};

/// Submissions per page handed to a worker.
const PAGE: usize = 256;
const WORKERS: usize = 2;

type Page = io::Result<Vec<Listed>>;

/// Runs `work` on every page of `form`'s submissions that `visible` accepts (and the entries
/// among them that cannot be read), oldest first, and `consume` on the results in that order.
pub fn run<T: Send>(
    store: &Store,
    form: &str,
    visible: &(dyn Fn(&str, Option<&str>) -> bool + Sync),
    work: &(dyn Fn(&[Listed]) -> io::Result<T> + Sync),
    mut consume: impl FnMut(T) -> io::Result<()>,
) -> io::Result<()> {
    std::thread::scope(|scope| {
        let mut pages: Vec<SyncSender<Page>> = Vec::new();
        let mut results: Vec<Receiver<io::Result<T>>> = Vec::new();
        for _ in 0..WORKERS {
            let (page_tx, page_rx) = sync_channel::<Page>(2);
            let (result_tx, result_rx) = sync_channel::<io::Result<T>>(2);
            pages.push(page_tx);
            results.push(result_rx);
            scope.spawn(move || {
                for page in page_rx {
                    let result = page.and_then(|records| work(&records));
                    if result_tx.send(result).is_err() {
                        return;
                    }
                }
            });
        }
        scope.spawn(move || read_pages(store, form, visible, &pages));
        for turn in 0.. {
            match results[turn % WORKERS].recv() {
                Ok(result) => consume(result?)?,
                // The reader ran out of pages: every earlier page has been consumed.
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    })
}

/// Pages through the store, giving page `i` to worker `i % WORKERS`; stops when a worker is gone.
fn read_pages(
    store: &Store,
    form: &str,
    visible: &(dyn Fn(&str, Option<&str>) -> bool + Sync),
    workers: &[SyncSender<Page>],
) {
    let mut after = None;
    for turn in 0.. {
        let page = store
            .submissions_page(form, after, PAGE, visible, |_| true)
            .map_err(io::Error::other);
        let last = match &page {
            Ok(records) if records.is_empty() => return,
            Ok(records) => {
                after = records.last().map(|entry| match entry {
                    Ok(record) => record.meta.seq,
                    Err(unreadable) => unreadable.seq,
                });
                records.len() < PAGE
            }
            Err(_) => true,
        };
        if workers[turn % WORKERS].send(page).is_err() || last {
            return;
        }
    }
}
