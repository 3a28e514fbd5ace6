//! Response bodies written by blocking code (exports, backups): the writer runs on a blocking
//! thread and sends chunks through a bounded channel, so memory stays flat; when the client goes
//! away the next write fails and the work stops at once.

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::sync::mpsc;

/// Chunk size sent to the client: big enough to keep syscalls few, small enough to stream.
const CHUNK: usize = 64 * 1024;

/// Runs `write` on a blocking thread; what it writes is the body. If it fails (other than by the
/// client leaving), the body ends in an error: the client sees a broken download, never a short
/// file that looks whole.
pub fn written_on_a_thread(
    write: impl FnOnce(ChannelWriter) -> io::Result<()> + Send + 'static,
) -> Body {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(8);
    // The request's span, so what the writer logs names the request.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let out = ChannelWriter {
            tx: tx.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        // `tx` lives until `write` is done, so the body ends only after any follow-up it does.
        if let Err(error) = write(out)
            && error.kind() != io::ErrorKind::BrokenPipe
        {
            let _ = tx.blocking_send(Err(error));
        }
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// `body` as a download named `file_name`.
pub fn attachment(content_type: &'static str, file_name: &str, body: impl Into<Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                content_disposition(file_name, "attachment"),
            ),
        ],
        body.into(),
    )
        .into_response()
}

/// Characters a `filename*` value may carry as they are (RFC 5987 `attr-char`); every other
/// byte of the UTF-8 name is percent-encoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266; `inline` to show it in place): the quoted name is a plain-ASCII
/// stand-in (anything but letters, digits, `.`, `-` and `_` becomes `_`), so nothing in a name,
/// such as a table named after a schema property, can close the quotes and add parameters; the
/// exact name, `中文` included, travels percent-encoded in `filename*`.
pub fn content_disposition(file_name: &str, disposition: &str) -> HeaderValue {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact = utf8_percent_encode(file_name, ATTR_CHAR);
    HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A `Write` that sends full chunks into the response body; a closed channel means the client left.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_name_cannot_add_parameters_and_keeps_its_exact_text_encoded() {
        let header =
            content_disposition("labour-survey-x\"; filename=\"evil.exe.csv", "attachment");
        let text = header.to_str().unwrap();
        assert_eq!(text.matches("filename=").count(), 1, "{text}");
        assert!(
            text.starts_with("attachment; filename=\"labour-survey-x__"),
            "{text}"
        );
        assert!(
            text.contains("filename*=UTF-8''labour-survey-x%22%3B%20filename%3D%22evil.exe.csv"),
            "{text}"
        );

        let chinese = content_disposition("劳动力.csv", "attachment");
        assert_eq!(
            chinese.to_str().unwrap(),
            "attachment; filename=\"___.csv\"; filename*=UTF-8''%E5%8A%B3%E5%8A%A8%E5%8A%9B.csv"
        );
    }

    #[test]
    fn writing_after_the_client_left_fails_at_once() {
        let (tx, rx) = mpsc::channel(1);
        let mut writer = ChannelWriter {
            tx,
            buffer: Vec::new(),
        };
        drop(rx);

        let error = writer.write_all(&vec![b'x'; CHUNK]).unwrap_err();

        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }
}
