//! `X-Twilio-Signature`: base64(HMAC(key, URL + sorted name/value pairs)).
//!
//! The key is the account's auth token with HMAC-SHA1 (the classic signature), or, when Twilio
//! signs with a shared key (its Webhooks configuration API, a request carrying
//! `X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=…`), that key's secret with the
//! algorithm the header names: HMAC-SHA1 or HMAC-SHA256. The string signed is the same
//! (docs/twilio.md "Signatures"). The URL is the public one Twilio called, never one rebuilt
//! from `Host`; both port forms are accepted because Twilio is not consistent about which one
//! it signs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// The HMAC a signature uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha256,
}

impl Algorithm {
    /// The header's name for it (`HMAC_SHA1`, `HMAC_SHA256`, any case, as twilio-python reads
    /// it); `None` for one this build does not know.
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name.trim().to_ascii_uppercase().as_str() {
            "HMAC_SHA1" => Some(Algorithm::HmacSha1),
            "HMAC_SHA256" => Some(Algorithm::HmacSha256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HmacSha1 => "HMAC_SHA1",
            Algorithm::HmacSha256 => "HMAC_SHA256",
        }
    }
}

/// `X-Twilio-Webhooks-Signature-Settings`: `key=<shared key id>,algorithm=<name>`. A missing
/// `algorithm` means HMAC-SHA1 (as twilio-python 9.13.0 reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub key: Option<String>,
    /// The algorithm's name as sent, and whether this build knows it.
    pub algorithm: Result<Algorithm, String>,
}

impl Settings {
    pub fn parse(header: &str) -> Settings {
        let mut key = None;
        let mut algorithm = None;
        for part in header.split(',') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name.trim() {
                "key" if !value.is_empty() => key = Some(value.to_owned()),
                "algorithm" if !value.is_empty() => algorithm = Some(value.to_owned()),
                _ => {}
            }
        }
        Settings {
            key,
            algorithm: match algorithm {
                None => Ok(Algorithm::HmacSha1),
                Some(name) => Algorithm::parse(&name).ok_or(name),
            },
        }
    }
}

/// The exact string Twilio signs: the URL, then for each parameter name in byte order, the
/// name followed by each of its distinct values in byte order (a repeated name adds each
/// distinct value; docs/twilio.md §2.1). Values are neither trimmed nor re-encoded.
pub fn string_to_sign(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut s = String::with_capacity(
        url.len() + params.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
    );
    s.push_str(url);
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

/// The signature Twilio would send for `url` and `params`, signed with the auth token.
pub fn compute(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    compute_with(Algorithm::HmacSha1, auth_token, url, params)
}

/// The signature for `url` and `params` with `key` and `algorithm`.
pub fn compute_with(
    algorithm: Algorithm,
    key: &[u8],
    url: &str,
    params: &[(String, String)],
) -> String {
    let data = string_to_sign(url, params);
    let mac = match algorithm {
        Algorithm::HmacSha1 => mac::<Hmac<Sha1>>(key, &data),
        Algorithm::HmacSha256 => mac::<Hmac<Sha256>>(key, &data),
    };
    STANDARD.encode(mac)
}

/// True when `header` is a valid auth-token signature (HMAC-SHA1) for `url` (with or without
/// its port, see [`port_variants`]) and `params`. A missing, empty or non-base64 header is
/// invalid. The comparison is constant-time (`Mac::verify_slice`).
pub fn is_valid(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> bool {
    is_valid_with(Algorithm::HmacSha1, auth_token, url, params, header)
}

/// [`is_valid`] with another key and algorithm (a shared key's).
pub fn is_valid_with(
    algorithm: Algorithm,
    key: &[u8],
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> bool {
    let Some(header) = header.filter(|h| !h.is_empty()) else {
        return false;
    };
    let Ok(expected) = STANDARD.decode(header) else {
        return false;
    };
    let (without_port, with_port) = port_variants(url);
    // Evaluate both candidates unconditionally, so timing does not tell which form matched.
    let a = verify(algorithm, key, &without_port, params, &expected);
    let b = verify(algorithm, key, &with_port, params, &expected);
    a | b
}

fn verify(
    algorithm: Algorithm,
    key: &[u8],
    url: &str,
    params: &[(String, String)],
    expected: &[u8],
) -> bool {
    let data = string_to_sign(url, params);
    match algorithm {
        Algorithm::HmacSha1 => verify_mac::<Hmac<Sha1>>(key, &data, expected),
        Algorithm::HmacSha256 => verify_mac::<Hmac<Sha256>>(key, &data, expected),
    }
}

fn new_mac<M: Mac + KeyInit>(key: &[u8]) -> M {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match <M as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = new_mac::<M>(key);
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn verify_mac<M: Mac + KeyInit>(key: &[u8], data: &str, expected: &[u8]) -> bool {
    let mut m = new_mac::<M>(key);
    m.update(data.as_bytes());
    m.verify_slice(expected).is_ok()
}

/// The URL without any port, and the URL with an explicit port (the given one, or 443/80 for
/// https/http). Userinfo, path and query are kept as they are. A URL whose scheme is neither
/// http nor https is returned unchanged in both forms.
pub fn port_variants(url: &str) -> (String, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), url.to_owned());
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return (url.to_owned(), url.to_owned()),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    // An IPv6 literal carries colons inside brackets; the port follows the closing bracket.
    let port_sep = match hostport.rfind(']') {
        Some(close) => hostport[close..].find(':').map(|i| close + i),
        None => hostport.rfind(':'),
    };
    let (host, port) = match port_sep {
        Some(i) => (&hostport[..i], &hostport[i + 1..]),
        None => (hostport, ""),
    };
    let port = if port.is_empty() { default_port } else { port };
    (
        format!("{scheme}://{userinfo}{host}{tail}"),
        format!("{scheme}://{userinfo}{host}:{port}{tail}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `P` of docs/twilio.md §2.3.
    fn p() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    const TOKEN: &[u8] = b"12345";

    /// Every form-body vector of docs/twilio.md §2.3: (number, URL signed, params, signature).
    #[test]
    fn computes_every_form_vector_of_twilio_md() {
        let mut p16 = p();
        p16.push(("ReasonConferenceEnded".into(), "test".into()));
        p16.push(("Reason".into(), "Participant".into()));
        type Vector<'a> = (u32, &'a str, Vec<(String, String)>, &'a str);
        let vectors: Vec<Vector<'_>> = vec![
            (
                1,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                p(),
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
            (
                2,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                p(),
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ),
            (
                3,
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                p(),
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
            (
                4,
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                p(),
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
            (
                6,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                pairs(&[
                    ("Sid", "CA123"),
                    ("SidAccount", "AC123"),
                    ("Digits", "5678"),
                    ("Digits", "1234"),
                    ("Digits", "1234"),
                ]),
                "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
            ),
            (
                10,
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                p(),
                "CukzLTc1tT5dXEDIHm/tKBanW10=",
            ),
            (
                11,
                "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2",
                p(),
                "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
            ),
            (
                12,
                "https://user@mycompany.com/myapp.php?foo=1&bar=2",
                p(),
                "2YRLlVAflCqxaNicjMpJcSTgzSs=",
            ),
            (
                13,
                "https://user@mycompany.com:443/myapp.php?foo=1&bar=2",
                p(),
                "aZfj4hyX1MLZhSS6QIL18Vn2/RA=",
            ),
            (
                14,
                "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It%27s+amazing",
                p(),
                "TfZzewPq8wqrGlMfyAud8+/IvJ0=",
            ),
            (
                14,
                "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing",
                p(),
                "dsq4Ehbj6cs+KdTkpF5sSSplOWw=",
            ),
            (
                15,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                pairs(&[
                    ("MessagingBinding.Address", "+1325xxxxxxx"),
                    ("MessagingBinding.Address", "+1415xxxxxxx"),
                ]),
                "83O6e2vORAoJHUNzJjDWN1jz+BA=",
            ),
            (
                15,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                pairs(&[
                    ("MessagingBinding.Address", "+1415xxxxxxx"),
                    ("MessagingBinding.Address", "+1325xxxxxxx"),
                ]),
                "83O6e2vORAoJHUNzJjDWN1jz+BA=",
            ),
            (
                16,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                p16.clone(),
                "vOEb5UThFn24KEfnOFLQY2AE5FY=",
            ),
            (
                17,
                "http://mycompany.com/myapp.php?foo=1&bar=2",
                p16.clone(),
                "n2xBNyzSW7rfYStDtOFiFMv7qNo=",
            ),
            (
                18,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                pairs(&[("property", "value"), ("boolean", "true")]),
                "NBdBDr/T/lgjI+tlgpXjKZQZs/k=",
            ),
            (
                19,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                pairs(&[
                    ("CallSid", "CA1234567890ABCDE"),
                    ("Caller", "+12349013030"),
                    ("Digits", "1234"),
                    ("From", "+12349013030"),
                    ("To", "+18005551212"),
                ]),
                "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
            ),
        ];
        for (n, url, params, expected) in vectors {
            assert_eq!(
                compute(TOKEN, url, &params),
                expected,
                "vector #{n} ({url})"
            );
            assert!(
                is_valid(TOKEN, url, &params, Some(expected)),
                "vector #{n} validates at its own URL"
            );
        }
    }

    #[test]
    fn wrong_sort_order_signature_of_vector_16_fails() {
        let mut params = p();
        params.push(("ReasonConferenceEnded".into(), "test".into()));
        params.push(("Reason".into(), "Participant".into()));
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(!is_valid(
            TOKEN,
            url,
            &params,
            Some("95+Bu0JVPi0r/SsESZCVf0dWAjw=")
        ));
    }

    /// The port rule: rows 1–4 of docs/security.md §1.2 and docs/twilio.md §2.3 #2, #4, #5, #11, #17.
    #[test]
    fn accepts_either_port_form() {
        let cases = [
            // (request URL as configured, signature computed over another form)
            (
                "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ), // #5: port removed
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ), // #2: 443 added
            (
                "http://mycompany.com/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ), // #4: 80 added
            (
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
            ), // #11
        ];
        for (url, sig) in cases {
            assert!(is_valid(TOKEN, url, &p(), Some(sig)), "{url}");
        }
        let mut p16 = p();
        p16.push(("ReasonConferenceEnded".into(), "test".into()));
        p16.push(("Reason".into(), "Participant".into()));
        assert!(is_valid(
            TOKEN,
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &p16,
            Some("n2xBNyzSW7rfYStDtOFiFMv7qNo=")
        ));
    }

    #[test]
    fn rejects_missing_empty_garbage_and_tampered() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!is_valid(TOKEN, url, &p(), None));
        assert!(!is_valid(TOKEN, url, &p(), Some("")));
        assert!(!is_valid(TOKEN, url, &p(), Some("not base64 !!")));
        assert!(!is_valid(b"54321", url, &p(), Some(good)), "another token");
        assert!(
            !is_valid(
                TOKEN,
                "http://evil.example/myapp.php?foo=1&bar=2",
                &p(),
                Some(good)
            ),
            "another URL"
        );
        let mut changed = p();
        changed[2].1 = "1235".into();
        assert!(
            !is_valid(TOKEN, url, &changed, Some(good)),
            "a value changed"
        );
        let mut added = p();
        added.push(("Extra".into(), "".into()));
        assert!(
            !is_valid(TOKEN, url, &added, Some(good)),
            "a key added, even with an empty value"
        );
        let removed: Vec<_> = p().into_iter().skip(1).collect();
        assert!(!is_valid(TOKEN, url, &removed, Some(good)), "a key removed");
        let mut trimmed = p();
        trimmed[2].1 = " 1234".into();
        assert!(
            !is_valid(TOKEN, url, &trimmed, Some(good)),
            "values are not trimmed"
        );
    }

    #[test]
    fn port_variants_of_common_forms() {
        let table = [
            (
                "http://127.0.0.1:3000/twilio/voice",
                "http://127.0.0.1/twilio/voice",
                "http://127.0.0.1:3000/twilio/voice",
            ),
            (
                "https://a.example/x?y=1",
                "https://a.example/x?y=1",
                "https://a.example:443/x?y=1",
            ),
            (
                "https://a.example",
                "https://a.example",
                "https://a.example:443",
            ),
            (
                "http://[::1]:8080/p",
                "http://[::1]/p",
                "http://[::1]:8080/p",
            ),
            ("http://[::1]/p", "http://[::1]/p", "http://[::1]:80/p"),
            (
                "https://u:p@h.example:8443/p",
                "https://u:p@h.example/p",
                "https://u:p@h.example:8443/p",
            ),
        ];
        for (url, without, with) in table {
            assert_eq!(
                port_variants(url),
                (without.to_string(), with.to_string()),
                "{url}"
            );
        }
    }

    /// Shared-key signatures (issue 15 §7): every value computed by Twilio's own library,
    /// twilio-python 9.13.0 (`RequestValidator(secret).compute_signature(url, params,
    /// "HMAC_SHA256")`, and `"HMAC_SHA1"` for the shared key with the classic hash).
    #[test]
    fn shared_key_vectors_of_twilio_python() {
        const SECRET: &[u8] = b"whsec_3f9a1b2c4d5e6f708192a3b4c5d6e7f8";
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let vectors: &[(Algorithm, &[u8], &str, &str)] = &[
            (
                Algorithm::HmacSha256,
                TOKEN,
                url,
                "033hgUJA9M/hXIZsYjwkerEP/DBm35nEri5FhCYjA5s=",
            ),
            (
                Algorithm::HmacSha256,
                TOKEN,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                "grxRoa/VNtXxd524NGLxIdev83nh23xhrRUVm50Umq4=",
            ),
            (
                Algorithm::HmacSha256,
                TOKEN,
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "WA3ikDp0gGYMmQALZ1U9mdekQ5p5QQTP4u2AZz1C0ng=",
            ),
            (
                Algorithm::HmacSha256,
                SECRET,
                url,
                "UaXLp4ltXR/+INaWL4U7HwcryPWs/BKVvnfwKQ8/egw=",
            ),
            (
                Algorithm::HmacSha256,
                SECRET,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                "HIpTLcTh06f4yewnaiO+VHSo14moTm5gOQaNqrq/jPg=",
            ),
            (
                Algorithm::HmacSha1,
                SECRET,
                url,
                "7GS+cz1VssVDea4HdaNH6/F8NNk=",
            ),
            (
                Algorithm::HmacSha1,
                TOKEN,
                url,
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
        ];
        for (algorithm, key, url, expected) in vectors {
            assert_eq!(
                compute_with(*algorithm, key, url, &p()),
                *expected,
                "{algorithm:?} {url}"
            );
            assert!(is_valid_with(*algorithm, key, url, &p(), Some(expected)));
        }
        // The port rule holds for SHA-256 too, and one algorithm's signature is not the other's.
        let with_port = "grxRoa/VNtXxd524NGLxIdev83nh23xhrRUVm50Umq4=";
        assert!(is_valid_with(
            Algorithm::HmacSha256,
            TOKEN,
            url,
            &p(),
            Some(with_port)
        ));
        assert!(!is_valid_with(
            Algorithm::HmacSha1,
            TOKEN,
            url,
            &p(),
            Some(with_port)
        ));
        assert!(!is_valid(
            TOKEN,
            url,
            &p(),
            Some("033hgUJA9M/hXIZsYjwkerEP/DBm35nEri5FhCYjA5s=")
        ));
        // Repeated values, as twilio-python signs them (docs/twilio.md §2.3 #6 under SHA-256).
        let repeated = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            compute_with(Algorithm::HmacSha256, TOKEN, url, &repeated),
            "jco7II1lvHpqANwxYMpqhOGVonnkKyDh1cL2ZUBvMDs="
        );
    }

    /// The settings header as twilio-python's `get_signature_algorithm` reads it.
    #[test]
    fn the_settings_header_names_the_key_and_the_algorithm() {
        let s = Settings::parse("key=webhooks_sharedkey_01,algorithm=HMAC_SHA256");
        assert_eq!(s.key.as_deref(), Some("webhooks_sharedkey_01"));
        assert_eq!(s.algorithm, Ok(Algorithm::HmacSha256));
        let s = Settings::parse(" key = a , algorithm = hmac_sha1 ");
        assert_eq!(
            (s.key.as_deref(), s.algorithm),
            (Some("a"), Ok(Algorithm::HmacSha1))
        );
        assert_eq!(Settings::parse("key=x").algorithm, Ok(Algorithm::HmacSha1));
        assert_eq!(Settings::parse("").key, None);
        assert_eq!(
            Settings::parse("key=x,algorithm=HMAC_SHA512").algorithm,
            Err("HMAC_SHA512".to_owned())
        );
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;
    use crate::form;

    const TOKEN: &[u8] = b"0123456789abcdef0123456789abcdef";

    const FIXTURES: &[(&[u8], &str, &str)] = &[
        (
            include_bytes!("../../../fixtures/twilio/voice-incoming.txt"),
            "/twilio/voice",
            "5pObUag17NPUNL8/W/nXlPHrY0I=",
        ),
        (
            include_bytes!("../../../fixtures/twilio/voice-dial-action-no-answer.txt"),
            "/twilio/voice/dial",
            "ZQ70QZBzi8PZciqrDr3WQw3jvX4=",
        ),
        (
            include_bytes!("../../../fixtures/twilio/voice-dial-action-completed.txt"),
            "/twilio/voice/dial",
            "46/e+F6YymYrzIK5CTfyh2Whli4=",
        ),
        (
            include_bytes!("../../../fixtures/twilio/voice-status-completed.txt"),
            "/twilio/voice/status",
            "v7xQWl35TyFcznHB+/o7AwMt1vY=",
        ),
        (
            include_bytes!("../../../fixtures/twilio/sms-inbound-stop.txt"),
            "/twilio/sms",
            "/uuA/3urD85N3D5qNogI+NUw9rM=",
        ),
        (
            include_bytes!("../../../fixtures/twilio/sms-inbound-reply.txt"),
            "/twilio/sms",
            "LlD2uM3KcxWWFN+ntTiwzdse7F4=",
        ),
        (
            include_bytes!("../../../fixtures/twilio/sms-status-delivered.txt"),
            "/twilio/sms/status",
            "H+Pv8TMlzyPsXT2UkyzUS3aZS3g=",
        ),
        (
            include_bytes!("../../../fixtures/twilio/sms-status-undelivered-30006.txt"),
            "/twilio/sms/status",
            "Sc1RRmA0ZRI+O6K7lQRsO8nUDKQ=",
        ),
    ];

    #[test]
    fn every_fixture_validates_at_its_url_and_only_there() {
        for (body, path, sig) in FIXTURES {
            let params = form::decode(body).expect("fixture decodes");
            let url = format!("http://127.0.0.1:3000{path}");
            assert_eq!(compute(TOKEN, &url, &params), *sig, "{path}");
            assert!(is_valid(TOKEN, &url, &params, Some(sig)), "{path}");
            let other = format!("http://127.0.0.1:3000{path}/x");
            assert!(
                !is_valid(TOKEN, &other, &params, Some(sig)),
                "{path} at another path"
            );
        }
    }

    #[test]
    fn the_https_variants_of_the_readme_validate_at_the_portless_url() {
        let params = form::decode(FIXTURES[0].0).expect("fixture decodes");
        let url = "https://textback.example.com/twilio/voice";
        assert_eq!(compute(TOKEN, url, &params), "rSE+apboJ39FDMhaBZl+7XATMII=");
        assert!(is_valid(
            TOKEN,
            url,
            &params,
            Some("rSE+apboJ39FDMhaBZl+7XATMII=")
        ));
        assert!(is_valid(
            TOKEN,
            url,
            &params,
            Some("kN/I+NuAI311d8UVrf7ILvTDzMA=")
        ));
    }

    #[test]
    fn the_readme_string_to_sign_is_byte_identical() {
        let params = form::decode(FIXTURES[4].0).expect("fixture decodes");
        let expected = "http://127.0.0.1:3000/twilio/smsAccountSidAC4a9f9b8b5c52fcd667586e852d52ac05ApiVersion2010-04-01BodySTOPFrom+16175550123FromCityBOSTONFromCountryUSFromStateMAFromZip02108MessageSidSMde6ce066e1d9e6b83094b4fac48e77a8MessagingServiceSidMG441a0ce03d5817bc1352b7f83958c7b3NumMedia0NumSegments1OptOutTypeSTOPSmsMessageSidSMde6ce066e1d9e6b83094b4fac48e77a8SmsSidSMde6ce066e1d9e6b83094b4fac48e77a8SmsStatusreceivedTo+15555550100ToCityToCountryUSToStateToZip";
        assert_eq!(
            string_to_sign("http://127.0.0.1:3000/twilio/sms", &params),
            expected
        );
    }

    #[test]
    fn a_fixture_signed_with_a_shared_key() {
        const SECRET: &[u8] = b"whsec_3f9a1b2c4d5e6f708192a3b4c5d6e7f8";
        // A fixture of fixtures/twilio/ signed with a shared key.
        let stop = form::decode(FIXTURES[4].0).expect("fixture decodes");
        assert_eq!(
            compute_with(
                Algorithm::HmacSha256,
                SECRET,
                "http://127.0.0.1:3000/twilio/sms",
                &stop
            ),
            "t2aFRjhJyqMRr6jyDobOurdunQITxATcyk1DdbVvOiY="
        );
        assert_eq!(
            compute_with(
                Algorithm::HmacSha1,
                SECRET,
                "http://127.0.0.1:3000/twilio/sms",
                &stop
            ),
            "d342AwOfAdvFDjOCTPt/hFrZ7Ec="
        );
    }
}
