//! Keyset pagination, newest first, with a visibility filter that never shortens a
//! page: rows the caller may not see are skipped and more are fetched.

use crate::error::StoreResult;
use crate::model::Micros;
use std::future::Future;
use uuid::Uuid;

/// The position of a row in the "newest first" order: `(created, id)` descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageKey {
    /// Creation time.
    pub created: Micros,
    /// Id, the tie-breaker.
    pub id: Uuid,
}

/// Rows that can be paginated.
pub trait Paged {
    /// The row's position.
    fn page_key(&self) -> PageKey;
}

/// Which way a window reads from its starting key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Rows strictly older than the key, newest first (`created DESC, id DESC`).
    Older,
    /// Rows strictly newer than the key, oldest first (`created ASC, id ASC`).
    Newer,
}

/// One raw batch a backend is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start after this key (exclusive); `None` starts at the newest row.
    pub from: Option<PageKey>,
    /// Reading direction.
    pub direction: Direction,
    /// At most this many rows.
    pub limit: usize,
}

impl Window {
    /// Every row (for internal reads of small sets), newest first.
    pub fn all() -> Window {
        Window { from: None, direction: Direction::Older, limit: usize::MAX / 2 }
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The newest rows.
    Start,
    /// Rows older than this one (`starting_after`).
    After(PageKey),
    /// Rows newer than this one (`ending_before`).
    Before(PageKey),
}

/// A page request after the cursor id has been resolved to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Page size.
    pub limit: usize,
    /// Start position.
    pub cursor: Cursor,
}

/// The largest raw batch asked of a backend at once.
const MAX_BATCH: usize = 1000;

/// Fills one page of `req.limit` visible rows, newest first, from raw batches:
///
/// ```
/// use castellan_store::page::{Cursor, PageFiller, PageKey, PageRequest, Paged, Window};
/// # use uuid::Uuid;
/// struct Row(i64);
/// impl Paged for Row {
///     fn page_key(&self) -> PageKey {
///         PageKey { created: self.0, id: Uuid::from_u128(self.0 as u128) }
///     }
/// }
/// // Stands in for a backend's `list_*(&filter, &window)`: rows 1..=100, newest first.
/// let list = |w: &Window| -> Vec<Row> {
///     let below = w.from.map_or(i64::MAX, |k| k.created);
///     (1..=100).rev().filter(|c| *c < below).take(w.limit).map(Row).collect()
/// };
/// let mut filler = PageFiller::new(&PageRequest { limit: 5, cursor: Cursor::Start });
/// while let Some(w) = filler.next_window() {
///     filler.push(list(&w), |r| r.0 % 10 == 0); // the caller may see every tenth row
/// }
/// let page: Vec<i64> = filler.finish().iter().map(|r| r.0).collect();
/// assert_eq!(page, [100, 90, 80, 70, 60]);
/// ```
///
/// Rows the caller may not see are skipped and more are fetched, so a page is only
/// short when the rows run out.
#[derive(Debug)]
pub struct PageFiller<T> {
    limit: usize,
    from: Option<PageKey>,
    direction: Direction,
    out: Vec<T>,
    exhausted: bool,
    last_want: usize,
}

impl<T: Paged> PageFiller<T> {
    /// Starts filling a page.
    pub fn new(req: &PageRequest) -> Self {
        let (from, direction) = match req.cursor {
            Cursor::Start => (None, Direction::Older),
            Cursor::After(k) => (Some(k), Direction::Older),
            Cursor::Before(k) => (Some(k), Direction::Newer),
        };
        PageFiller { limit: req.limit, from, direction, out: Vec::new(), exhausted: false, last_want: 0 }
    }

    /// The next raw window to fetch, or `None` when the page is complete.
    pub fn next_window(&mut self) -> Option<Window> {
        if self.exhausted || self.out.len() >= self.limit {
            return None;
        }
        // Over-fetch a little: most rows are usually visible, so one batch is typical.
        let want = ((self.limit - self.out.len()) * 2).clamp(16, MAX_BATCH);
        self.last_want = want;
        Some(Window { from: self.from, direction: self.direction, limit: want })
    }

    /// Takes one fetched batch (the answer to the last [`PageFiller::next_window`]).
    pub fn push(&mut self, rows: Vec<T>, mut visible: impl FnMut(&T) -> bool) {
        if rows.len() < self.last_want {
            self.exhausted = true;
        }
        for row in rows {
            self.from = Some(row.page_key());
            if visible(&row) {
                self.out.push(row);
                if self.out.len() == self.limit {
                    break;
                }
            }
        }
    }

    /// The page, newest first whichever way the cursor pointed.
    pub fn finish(mut self) -> Vec<T> {
        if self.direction == Direction::Newer {
            self.out.reverse();
        }
        self.out
    }
}

/// [`PageFiller`] driven by an async batch source (convenient where no borrow of a
/// transaction is involved).
pub async fn fill_page<T, F, Fut>(
    req: &PageRequest,
    mut fetch: F,
    mut visible: impl FnMut(&T) -> bool,
) -> StoreResult<Vec<T>>
where
    T: Paged,
    F: FnMut(Window) -> Fut,
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let mut filler = PageFiller::new(req);
    while let Some(w) = filler.next_window() {
        let rows = fetch(w).await?;
        filler.push(rows, &mut visible);
    }
    Ok(filler.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Row(i64);
    impl Paged for Row {
        fn page_key(&self) -> PageKey {
            PageKey { created: self.0, id: Uuid::from_u128(self.0 as u128) }
        }
    }

    fn fetch_from(all: &[i64], w: Window) -> Vec<Row> {
        let mut v: Vec<i64> = all.to_vec();
        match w.direction {
            Direction::Older => v.sort_by(|a, b| b.cmp(a)),
            Direction::Newer => v.sort(),
        }
        v.into_iter()
            .filter(|x| match (w.from, w.direction) {
                (None, _) => true,
                (Some(k), Direction::Older) => *x < k.created,
                (Some(k), Direction::Newer) => *x > k.created,
            })
            .take(w.limit)
            .map(Row)
            .collect()
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        // The futures here never wait, so polling once with a no-op waker completes them.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("test future pended"),
        }
    }

    #[test]
    fn a_page_skips_invisible_rows_without_getting_shorter() {
        let all: Vec<i64> = (1..=200).collect();
        let req = PageRequest { limit: 10, cursor: Cursor::Start };
        let page = block_on(fill_page(
            &req,
            |w| {
                let rows = fetch_from(&all, w);
                async move { Ok(rows) }
            },
            |r: &Row| r.0 % 7 == 0,
        ))
        .unwrap();
        let got: Vec<i64> = page.into_iter().map(|r| r.0).collect();
        assert_eq!(got, vec![196, 189, 182, 175, 168, 161, 154, 147, 140, 133]);
    }

    #[test]
    fn ending_before_returns_the_rows_just_newer_in_newest_first_order() {
        let all: Vec<i64> = (1..=50).collect();
        let key = Row(20).page_key();
        let req = PageRequest { limit: 3, cursor: Cursor::Before(key) };
        let page = block_on(fill_page(
            &req,
            |w| {
                let rows = fetch_from(&all, w);
                async move { Ok(rows) }
            },
            |_: &Row| true,
        ))
        .unwrap();
        assert_eq!(page, vec![Row(23), Row(22), Row(21)]);
    }

    #[test]
    fn a_page_stops_when_the_rows_run_out() {
        let all: Vec<i64> = (1..=5).collect();
        let key = Row(3).page_key();
        let req = PageRequest { limit: 10, cursor: Cursor::After(key) };
        let page = block_on(fill_page(
            &req,
            |w| {
                let rows = fetch_from(&all, w);
                async move { Ok(rows) }
            },
            |_: &Row| true,
        ))
        .unwrap();
        assert_eq!(page, vec![Row(2), Row(1)]);
    }
}
