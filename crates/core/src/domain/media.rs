//! Pictures in and out (README.md "Pictures"): what textback accepts as a file, told by its bytes
//! (never by its name or the sender's word), within a size and a pixel count; where a media URL
//! of a webhook may point; how an alert names a text's media. Pure.

/// The largest file textback keeps or sends: Twilio's own cap on an MMS (docs/twilio.md §3.2:
/// jpeg, gif and png up to 5 MB).
pub const MAX_BYTES: usize = 5 * 1024 * 1024;

/// The most pixels an image may have. A phone's photo is 12 to 48 million; a "decompression
/// bomb" (a few kilobytes of PNG that inflate to gigabytes in the viewer's browser) is far more.
pub const MAX_PIXELS: u64 = 64_000_000;

/// The most media a text carries (Twilio: up to 10 `MediaUrl`).
pub const MAX_PER_TEXT: usize = 10;

/// The file types textback keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jpeg,
    Png,
    Gif,
    Webp,
    Pdf,
}

impl Kind {
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Gif => "image/gif",
            Kind::Webp => "image/webp",
            Kind::Pdf => "application/pdf",
        }
    }

    pub fn from_mime(mime: &str) -> Option<Kind> {
        match mime {
            "image/jpeg" => Some(Kind::Jpeg),
            "image/png" => Some(Kind::Png),
            "image/gif" => Some(Kind::Gif),
            "image/webp" => Some(Kind::Webp),
            "application/pdf" => Some(Kind::Pdf),
            _ => None,
        }
    }

    pub fn is_image(self) -> bool {
        self != Kind::Pdf
    }

    /// What an agent may attach to a reply: the types Twilio formats for every phone (jpeg, gif,
    /// png; docs/twilio.md §3.2). A PDF or a WebP may not show on the lead's phone.
    pub fn may_send(self) -> bool {
        matches!(self, Kind::Jpeg | Kind::Png | Kind::Gif)
    }
}

/// A file that passed: its type and, for an image, its size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub kind: Kind,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Empty,
    TooLarge {
        bytes: usize,
    },
    /// Not one of [`Kind`]'s: what its bytes are, when known (`application/zip`).
    Type {
        found: Option<String>,
    },
    /// An image whose header cannot be read: not an image, whatever it says.
    Unreadable,
    TooManyPixels {
        width: u64,
        height: u64,
    },
}

impl Refused {
    /// The stored reason.
    pub fn code(&self) -> String {
        match self {
            Refused::Empty => "empty".into(),
            Refused::TooLarge { bytes } => format!("too_large:{bytes}"),
            Refused::Type { found } => format!("type:{}", found.as_deref().unwrap_or("unknown")),
            Refused::Unreadable => "unreadable".into(),
            Refused::TooManyPixels { width, height } => format!("pixels:{width}x{height}"),
        }
    }

    /// The reason in words, for the thread and the reply form.
    pub fn words(&self) -> String {
        match self {
            Refused::Empty => "the file is empty".into(),
            Refused::TooLarge { bytes } => format!(
                "the file is {} MB; the most is {} MB",
                mb(*bytes),
                MAX_BYTES / (1024 * 1024)
            ),
            Refused::Type { found: Some(f) } => {
                format!("a {f} file is not a photo or a PDF")
            }
            Refused::Type { found: None } => "the file is not a photo or a PDF".into(),
            Refused::Unreadable => "the picture cannot be read".into(),
            Refused::TooManyPixels { width, height } => {
                format!("the picture is {width} × {height} pixels, too large to show")
            }
        }
    }
}

/// A stored reason (`code`) back in words, for the thread; `None` for one this build does not
/// know.
pub fn reason_words(code: &str) -> Option<String> {
    let refused = match code.split_once(':') {
        None if code == "empty" => Refused::Empty,
        None if code == "unreadable" => Refused::Unreadable,
        Some(("too_large", n)) => Refused::TooLarge {
            bytes: n.parse().ok()?,
        },
        Some(("type", "unknown")) => Refused::Type { found: None },
        Some(("type", f)) => Refused::Type {
            found: Some(f.to_owned()),
        },
        Some(("pixels", wh)) => {
            let (w, h) = wh.split_once('x')?;
            Refused::TooManyPixels {
                width: w.parse().ok()?,
                height: h.parse().ok()?,
            }
        }
        _ => return None,
    };
    Some(refused.words())
}

fn mb(bytes: usize) -> String {
    let tenths = (bytes as u64 * 10).div_ceil(1024 * 1024);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Checks a file's bytes: size, type by its magic numbers, and an image's pixels from its
/// header (nothing is decoded).
pub fn check(bytes: &[u8]) -> Result<Checked, Refused> {
    if bytes.is_empty() {
        return Err(Refused::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return Err(Refused::TooLarge { bytes: bytes.len() });
    }
    let found = infer::get(bytes).map(|t| t.mime_type());
    let Some(kind) = found.and_then(Kind::from_mime) else {
        return Err(Refused::Type {
            found: found.map(str::to_owned),
        });
    };
    if !kind.is_image() {
        return Ok(Checked {
            kind,
            width: None,
            height: None,
        });
    }
    let size = imagesize::blob_size(bytes).map_err(|_| Refused::Unreadable)?;
    let (width, height) = (size.width as u64, size.height as u64);
    if width == 0 || height == 0 {
        return Err(Refused::Unreadable);
    }
    if width.saturating_mul(height) > MAX_PIXELS {
        return Err(Refused::TooManyPixels { width, height });
    }
    Ok(Checked {
        kind,
        width: u32::try_from(width).ok(),
        height: u32::try_from(height).ok(),
    })
}

/// The SIDs of a webhook's `MediaUrlN` (docs/twilio.md §3.5), when it is Twilio's:
/// `https://api.twilio.com/2010-04-01/Accounts/{AC}/Messages/{MM|SM}/Media/{ME}` on the
/// carrier's API host `api_host`, of the brokerage's `account`. The fetch is built from these
/// SIDs and our own API base, never from the URL: a webhook cannot make textback fetch
/// anything else.
pub fn twilio_media_sids(
    url: &str,
    api_host: &str,
    account: &str,
) -> Result<(String, String), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("not_twilio")?;
    let (host, path) = rest.split_once('/').ok_or("not_twilio")?;
    if !host.eq_ignore_ascii_case(api_host) {
        return Err("not_twilio");
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let parts: Vec<&str> = path.split('/').collect();
    let ["2010-04-01", "Accounts", ac, "Messages", mm, "Media", me] = parts.as_slice() else {
        return Err("not_twilio");
    };
    if *ac != account {
        return Err("other_account");
    }
    let sid = |s: &str, prefixes: &[&str]| {
        s.len() == 34
            && prefixes.iter().any(|p| s.starts_with(p))
            && s[2..].chars().all(|c| c.is_ascii_hexdigit())
    };
    if !sid(mm, &["MM", "SM"]) || !sid(me, &["ME"]) {
        return Err("not_twilio");
    }
    Ok(((*mm).to_owned(), (*me).to_owned()))
}

/// How an alert names a text's media, from the types Twilio gave (`MediaContentTypeN`):
/// "[photo]", "[3 photos]", "[PDF]", "[2 files]"; `None` when there are none.
pub fn tag(claimed_types: &[&str]) -> Option<String> {
    let n = claimed_types.len();
    if n == 0 {
        return None;
    }
    let images = claimed_types
        .iter()
        .filter(|t| t.starts_with("image/"))
        .count();
    Some(match (n, images) {
        (1, 1) => "[photo]".to_owned(),
        (n, i) if i == n => format!("[{n} photos]"),
        (1, _) if claimed_types[0] == "application/pdf" => "[PDF]".to_owned(),
        (1, _) => "[file]".to_owned(),
        (n, _) => format!("[{n} files]"),
    })
}

#[cfg(test)]
pub mod samples {
    //! Small real files for the tests (built here, byte by byte).

    /// A PNG's signature and header, `width` × `height`.
    pub fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        out.extend_from_slice(&13u32.to_be_bytes());
        out.extend_from_slice(b"IHDR");
        out.extend_from_slice(&width.to_be_bytes());
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&[8, 2, 0, 0, 0]);
        out.extend_from_slice(&[0, 0, 0, 0]); // CRC (not checked by a header probe)
        out.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
        out
    }

    /// A JPEG's first bytes with a start-of-frame giving its size.
    pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&width.to_be_bytes());
        out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC00000000000000000000000000000001";
    const MM: &str = "MM0123456789abcdef0123456789abcdef";
    const ME: &str = "ME0123456789abcdef0123456789abcdef";

    #[test]
    fn files_are_told_by_their_bytes_within_the_caps() {
        let png = samples::png(640, 480);
        assert_eq!(
            check(&png),
            Ok(Checked {
                kind: Kind::Png,
                width: Some(640),
                height: Some(480)
            })
        );
        assert_eq!(
            check(&samples::jpeg(4032, 3024)).map(|c| c.kind),
            Ok(Kind::Jpeg)
        );
        assert_eq!(
            check(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n").map(|c| c.kind),
            Ok(Kind::Pdf)
        );
        assert_eq!(
            check(b"GIF89a\x01\0\x01\0\0\0\0;").map(|c| c.kind),
            Ok(Kind::Gif)
        );
        // A decompression bomb: a valid header claiming 100 000 × 100 000 pixels.
        assert_eq!(
            check(&samples::png(100_000, 100_000)),
            Err(Refused::TooManyPixels {
                width: 100_000,
                height: 100_000
            })
        );
        // A zip (or a zip bomb) named photo.jpg and sent as image/jpeg: its bytes say zip.
        let zip = b"PK\x03\x04\x14\0\0\0\x08\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
        assert_eq!(
            check(&zip),
            Err(Refused::Type {
                found: Some("application/zip".into())
            })
        );
        assert_eq!(check(b"just some text"), Err(Refused::Type { found: None }));
        assert_eq!(check(b""), Err(Refused::Empty));
        // A PNG signature with no header after it.
        assert_eq!(check(&png[..10]), Err(Refused::Unreadable));
        let mut big = samples::jpeg(100, 100);
        big.resize(MAX_BYTES + 1, 0);
        assert_eq!(
            check(&big),
            Err(Refused::TooLarge {
                bytes: MAX_BYTES + 1
            })
        );
        big.truncate(MAX_BYTES);
        assert!(check(&big).is_ok(), "exactly the cap passes");
    }

    #[test]
    fn refusals_are_stored_and_read_back_in_words() {
        for r in [
            Refused::Empty,
            Refused::TooLarge { bytes: 7_340_032 },
            Refused::Type {
                found: Some("application/zip".into()),
            },
            Refused::Type { found: None },
            Refused::Unreadable,
            Refused::TooManyPixels {
                width: 100_000,
                height: 90_000,
            },
        ] {
            assert_eq!(reason_words(&r.code()), Some(r.words()), "{r:?}");
        }
        assert_eq!(
            Refused::TooLarge { bytes: 7_340_032 }.words(),
            "the file is 7.0 MB; the most is 5 MB"
        );
        assert_eq!(reason_words("not_twilio"), None);
    }

    #[test]
    fn only_twilio_s_media_urls_of_the_account_are_fetched() {
        let ok =
            format!("https://api.twilio.com/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}");
        assert_eq!(
            twilio_media_sids(&ok, "api.twilio.com", AC),
            Ok((MM.to_owned(), ME.to_owned()))
        );
        let cases: &[(String, &str)] = &[
            (ok.replace("api.twilio.com", "evil.example"), "not_twilio"),
            (
                ok.replace("api.twilio.com", "api.twilio.com.evil.example"),
                "not_twilio",
            ),
            (
                ok.replace("api.twilio.com", "api.twilio.com@evil.example"),
                "not_twilio",
            ),
            (ok.replace("https://", "ftp://"), "not_twilio"),
            (ok.replace("/Media/", "/Medias/"), "not_twilio"),
            (ok.replace(ME, "ME../../../Calls"), "not_twilio"),
            (format!("{ok}/x"), "not_twilio"),
            (
                ok.replace(AC, "AC00000000000000000000000000000002"),
                "other_account",
            ),
            (
                "http://169.254.169.254/latest/meta-data".to_owned(),
                "not_twilio",
            ),
            (String::new(), "not_twilio"),
        ];
        for (url, why) in cases {
            assert_eq!(
                twilio_media_sids(url, "api.twilio.com", AC),
                Err(*why),
                "{url}"
            );
        }
        // The query of a signed URL is ignored, the host's case too.
        assert!(twilio_media_sids(&format!("{ok}?x=1"), "API.twilio.com", AC).is_ok());
    }

    #[test]
    fn alerts_name_the_media() {
        assert_eq!(tag(&[]), None);
        assert_eq!(tag(&["image/jpeg"]).as_deref(), Some("[photo]"));
        assert_eq!(
            tag(&["image/jpeg", "image/png"]).as_deref(),
            Some("[2 photos]")
        );
        assert_eq!(tag(&["application/pdf"]).as_deref(), Some("[PDF]"));
        assert_eq!(tag(&["text/vcard"]).as_deref(), Some("[file]"));
        assert_eq!(
            tag(&["image/jpeg", "text/vcard"]).as_deref(),
            Some("[2 files]")
        );
    }
}
