//! One-time download links, so a browser can save an export to disk without a bearer token in a
//! URL (where it would stay in the history, in proxy logs and in the Referer of what it opens).
//!
//! A signed-in client asks for a link to one of its own downloads; the link works once, within
//! [`VALID_FOR`], and runs the download as that client (its token is checked again then, so a
//! login that ended meanwhile gets nothing). Links live in this process's memory only: a restart
//! forgets them, which costs a client one more request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// How long a link may wait to be used.
pub const VALID_FOR: Duration = Duration::from_secs(60);
/// Links one user may hold unused at once: a console needs a few, nothing needs hundreds.
const MOST_PER_USER: usize = 20;

/// What a link stands for.
#[derive(Clone, Debug)]
pub struct Link {
    pub username: String,
    /// The download's path and query, e.g. `/api/v1/forms/labour-survey/export.zip?labels=true`.
    pub path: String,
    /// The access token the link was asked for with, presented again when it is used.
    pub token: String,
    expires: Instant,
}

/// The links not yet used.
#[derive(Default)]
pub struct DownloadLinks {
    links: Mutex<HashMap<String, Link>>,
}

impl DownloadLinks {
    /// A new link's secret, or `None` when `username` holds too many unused ones.
    pub fn create(&self, username: &str, path: &str, token: &str) -> Option<String> {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut links = self
            .links
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        links.retain(|_, link| link.expires > now);
        if links.values().filter(|l| l.username == username).count() >= MOST_PER_USER {
            return None;
        }
        links.insert(
            secret.clone(),
            Link {
                username: username.to_owned(),
                path: path.to_owned(),
                token: token.to_owned(),
                expires: now + VALID_FOR,
            },
        );
        Some(secret)
    }

    /// The link of `secret`, once: a second use, or one after [`VALID_FOR`], finds nothing.
    pub fn redeem(&self, secret: &str) -> Option<Link> {
        let mut links = self
            .links
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        links
            .remove(secret)
            .filter(|link| link.expires > Instant::now())
    }
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
    fn a_link_works_once() {
        let links = DownloadLinks::default();
        let secret = links
            .create("ana", "/api/v1/forms/f/export.zip", "t")
            .unwrap();
        assert_eq!(secret.len(), 64);
        assert_eq!(links.redeem(&secret).unwrap().username, "ana");
        assert!(links.redeem(&secret).is_none());
        assert!(links.redeem("not-a-link").is_none());
    }

    #[test]
    fn one_user_holds_a_bounded_number_of_links() {
        let links = DownloadLinks::default();
        for _ in 0..MOST_PER_USER {
            assert!(links.create("ana", "/api/v1/admin/backup", "t").is_some());
        }
        assert!(links.create("ana", "/api/v1/admin/backup", "t").is_none());
        assert!(links.create("bo", "/api/v1/admin/backup", "t").is_some());
    }

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
