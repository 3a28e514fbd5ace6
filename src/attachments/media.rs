//! The kinds of file a form may ask for, and how a file's first bytes prove its kind.
//!
//! A form marks an attachment question with JSON Schema's `contentMediaType`; only the types
//! below are attachments (a `contentMediaType` of, say, `application/json` keeps its standard
//! meaning: a string holding JSON). The magic check is what makes a renamed `.exe` fail.

use std::fmt;

/// Every type an attachment question may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaType {
    Jpeg,
    Png,
    Webp,
    AudioWebm,
    AudioOgg,
    AudioMp4,
    AudioMpeg,
    Pdf,
}

impl MediaType {
    pub const ALL: [MediaType; 8] = [
        MediaType::Jpeg,
        MediaType::Png,
        MediaType::Webp,
        MediaType::AudioWebm,
        MediaType::AudioOgg,
        MediaType::AudioMp4,
        MediaType::AudioMpeg,
        MediaType::Pdf,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Webp => "image/webp",
            MediaType::AudioWebm => "audio/webm",
            MediaType::AudioOgg => "audio/ogg",
            MediaType::AudioMp4 => "audio/mp4",
            MediaType::AudioMpeg => "audio/mpeg",
            MediaType::Pdf => "application/pdf",
        }
    }

    /// The type named `text` (case-insensitive, parameters such as `;codecs=opus` ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let essence = text.split(';').next().unwrap_or_default().trim();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(essence))
    }

    /// Whether a file that begins with `head` (its first [`MAGIC_BYTES`] bytes, or all of a
    /// shorter file) is of this type.
    pub fn matches(self, head: &[u8]) -> bool {
        match self {
            MediaType::Jpeg => infer::image::is_jpeg(head),
            MediaType::Png => infer::image::is_png(head),
            MediaType::Webp => infer::image::is_webp(head),
            // A WebM recording is an EBML file whose DocType is `webm`; infer files it under video.
            MediaType::AudioWebm => infer::video::is_webm(head),
            MediaType::AudioOgg => infer::audio::is_ogg(head),
            // Phones record MP4 audio with an `M4A ` brand or, like Safari, a general MP4 brand.
            MediaType::AudioMp4 => infer::audio::is_m4a(head) || infer::video::is_mp4(head),
            MediaType::AudioMpeg => infer::audio::is_mp3(head),
            MediaType::Pdf => infer::archive::is_pdf(head),
        }
    }

    /// The file name extensions of this type, the usual one first.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            MediaType::Jpeg => &["jpg", "jpeg"],
            MediaType::Png => &["png"],
            MediaType::Webp => &["webp"],
            MediaType::AudioWebm => &["webm", "weba"],
            MediaType::AudioOgg => &["ogg", "oga", "opus"],
            MediaType::AudioMp4 => &["m4a", "mp4"],
            MediaType::AudioMpeg => &["mp3"],
            MediaType::Pdf => &["pdf"],
        }
    }
}

/// How many leading bytes [`MediaType::matches`] needs (WebM's DocType may sit 256 bytes in).
pub const MAGIC_BYTES: usize = 4096;

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The types a server accepts (`SURVEY_ATTACHMENT_TYPES`): comma-separated, all by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed(pub Vec<MediaType>);

impl Default for Allowed {
    fn default() -> Self {
        Self(MediaType::ALL.to_vec())
    }
}

impl Allowed {
    pub fn contains(&self, media_type: MediaType) -> bool {
        self.0.contains(&media_type)
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|t| t.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl std::str::FromStr for Allowed {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut types = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let known = MediaType::parse(part).ok_or_else(|| {
                format!(
                    "{part:?} is not an attachment type this server can check; known: {}",
                    Allowed::default()
                )
            })?;
            if !types.contains(&known) {
                types.push(known);
            }
        }
        Ok(Self(types))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_knows_its_own_first_bytes_and_no_other() {
        let mut webm = vec![0x1a, 0x45, 0xdf, 0xa3];
        webm.extend_from_slice(b"\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm");
        webm.resize(600, 0);
        let samples: [(MediaType, &[u8]); 8] = [
            (MediaType::Jpeg, b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
            (MediaType::Png, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
            (MediaType::Webp, b"RIFF\x24\x00\x00\x00WEBPVP8 "),
            (MediaType::AudioWebm, &webm),
            (MediaType::AudioOgg, b"OggS\x00\x02\x00\x00\x00\x00"),
            (
                MediaType::AudioMp4,
                b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",
            ),
            (MediaType::AudioMpeg, b"ID3\x04\x00\x00\x00\x00\x00\x00"),
            (MediaType::Pdf, b"%PDF-1.7\n%\xe2\xe3"),
        ];
        for (declared, _) in samples {
            for (other, head) in samples {
                assert_eq!(
                    declared.matches(head),
                    declared == other,
                    "{declared} vs {other}"
                );
            }
        }
        let windows_program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00";
        assert!(MediaType::ALL.iter().all(|t| !t.matches(windows_program)));
    }

    #[test]
    fn types_parse_without_case_or_parameters_and_the_allowed_list_refuses_unknown_ones() {
        assert_eq!(
            MediaType::parse("Audio/WebM;codecs=opus"),
            Some(MediaType::AudioWebm)
        );
        assert_eq!(MediaType::parse("application/json"), None);
        let allowed: Allowed = "image/jpeg, image/png".parse().unwrap();
        assert!(allowed.contains(MediaType::Png) && !allowed.contains(MediaType::Pdf));
        assert!("image/gif".parse::<Allowed>().is_err());
        assert_eq!(Allowed::default().0.len(), 8);
    }
}
