//! Answer shapes several resources share. Handlers return these types, and the OpenAPI document
//! is generated from the same types, so what is documented is what is sent.

use serde::Serialize;
use utoipa::ToSchema;

/// A page of items and the cursor for the next one (`null` at the end).
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    items: Vec<T>,
    /// Pass back as `cursor` to continue.
    next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, next_cursor: Option<String>) -> Self {
        Self { items, next_cursor }
    }
}

/// All items, no paging.
#[derive(Serialize, ToSchema)]
pub struct Items<T> {
    items: Vec<T>,
}

impl<T> Items<T> {
    pub fn new(items: Vec<T>) -> Self {
        Self { items }
    }
}

/// The liveness and readiness answer.
#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready`.
    status: &'static str,
}

impl Status {
    pub fn new(status: &'static str) -> Self {
        Self { status }
    }
}
