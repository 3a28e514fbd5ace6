//! One-time download links, so a browser can save an export to disk without a bearer token in a
//! URL (where it would stay in the history, in proxy logs and in the Referer of what it opens).
//!
//! A signed-in client asks for a link to one of its own downloads; the link works once, within
//! [`VALID_FOR`], and runs the download as that client (its token is checked again then, so a
//! login that ended meanwhile gets nothing). Links are kept in the store's short-lived state
//! (never in a backup), so a link made on one API node works on any other.

use std::time::Duration;

use rand::RngCore;

use crate::error::AppError;
use crate::store::{DownloadLink, Store};

/// How long a link may wait to be used.
pub const VALID_FOR: Duration = Duration::from_secs(60);
/// Links one user may hold unused at once: a console needs a few, nothing needs hundreds.
const MOST_PER_USER: usize = 20;

/// A new link's secret, or `None` when `username` holds too many unused ones.
pub async fn create(
    store: &Store,
    username: &str,
    path: &str,
    token: &str,
) -> Result<Option<String>, AppError> {
    let now = crate::clock::unix_now();
    if store.download_links_of(username, now)? >= MOST_PER_USER {
        return Ok(None);
    }
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let secret = crate::store::hex(&secret);
    let link = DownloadLink {
        username: username.to_owned(),
        path: path.to_owned(),
        token: token.to_owned(),
        expires_at: now + VALID_FOR.as_secs() as i64,
    };
    store.put_download_link(&secret, &link)?.durable().await?;
    Ok(Some(secret))
}

/// The link of `secret`, once: a second use, or one after [`VALID_FOR`], finds nothing.
pub async fn redeem(store: &Store, secret: &str) -> Result<Option<DownloadLink>, AppError> {
    let link = store.take_download_link(secret)?.durable().await?;
    Ok(link.filter(|link| link.expires_at > crate::clock::unix_now()))
}

/// Whether `path` is a download a link may stand for: an export, the indicators as CSV, or a
/// backup. Anything else (a write, the audit log) is not.
pub fn is_download(path: &str) -> bool {
    let route = path.split_once('?').map_or(path, |(route, _)| route);
    let parts: Vec<&str> = route.split('/').collect();
    match parts.as_slice() {
        ["", "api", "v1", "admin", "backup"] => true,
        ["", "api", "v1", "forms", form, rest @ ..] if !form.is_empty() => {
            matches!(rest, ["export.zip"] | ["indicators.csv"] | ["export", _])
                && !rest.iter().any(|p| p.is_empty() || *p == ".." || *p == ".")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_downloads_have_links() {
        for path in [
            "/api/v1/forms/labour-survey/export.zip?labels=true",
            "/api/v1/forms/labour-survey/export/members.csv?bom=false",
            "/api/v1/forms/labour-survey/indicators.csv?table=members&by=township",
            "/api/v1/admin/backup",
        ] {
            assert!(is_download(path), "{path}");
        }
        for path in [
            "/api/v1/audit",
            "/api/v1/forms/labour-survey/submissions",
            "/api/v1/forms//export.zip",
            "/api/v1/forms/x/export/../../audit",
            "/api/v1/downloads/abc",
            "https://elsewhere.example/api/v1/admin/backup",
            "",
        ] {
            assert!(!is_download(path), "{path}");
        }
    }
}
