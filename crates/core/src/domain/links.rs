//! Links in texts (docs/compliance.md R11): a link (`http://`, `https://`, `www.`) must be on a
//! domain the brokerage owns (`[compliance] link_domains`), and public shorteners are refused
//! everywhere, with or without a scheme, even when listed: carriers filter them.

/// The public shorteners of docs/compliance.md R11.
pub const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "t.ly",
    "bit.do",
    "s.id",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkProblem {
    /// A public shortener (`bit.ly/x`, `https://tinyurl.com/y`).
    Shortener { host: String },
    /// A link to a domain that is not in `link_domains`.
    NotAllowed { host: String },
}

impl std::fmt::Display for LinkProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkProblem::Shortener { host } => {
                write!(
                    f,
                    "`{host}` is a public link shortener; carriers filter them, so they are never allowed"
                )
            }
            LinkProblem::NotAllowed { host } => {
                write!(
                    f,
                    "link to `{host}`, which is not in [compliance] link_domains"
                )
            }
        }
    }
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

fn host_at(text: &str, start: usize) -> String {
    let host: String = text[start..]
        .chars()
        .take_while(|c| is_host_char(*c))
        .collect();
    host.trim_end_matches('.').to_owned()
}

fn on_domain(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Whether `text` holds a link as R11 defines one: `http://`, `https://` or `www.` (any case).
pub fn has_link(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("http://")
        || lower.contains("https://")
        || lower
            .match_indices("www.")
            .any(|(i, _)| !lower[..i].chars().next_back().is_some_and(is_host_char))
}

/// Every problem with the links in `text`, in order of appearance, each host once.
pub fn check(text: &str, allowed_domains: &[String]) -> Vec<LinkProblem> {
    let lower = text.to_ascii_lowercase();
    // (position in the text, problem): sorted at the end so problems come in reading order.
    let mut found: Vec<(usize, LinkProblem)> = Vec::new();

    // Shorteners: any occurrence of the domain with a host boundary on both sides (a
    // subdomain such as `x.bit.ly` counts; `habit.ly` and `at.com` do not).
    for domain in SHORTENERS {
        for (i, _) in lower.match_indices(domain) {
            let before = lower[..i].chars().next_back();
            let after = lower[i + domain.len()..].chars().next();
            let left_ok = before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'));
            let right_ok = after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'));
            if left_ok && right_ok {
                // Report the whole host the shortener sits in.
                let host_start = lower[..i]
                    .rfind(|c: char| !is_host_char(c))
                    .map_or(0, |p| p + 1);
                found.push((
                    host_start,
                    LinkProblem::Shortener {
                        host: host_at(&lower, host_start),
                    },
                ));
            }
        }
    }

    // Links with a scheme or `www.`.
    for marker in ["http://", "https://", "www."] {
        for (i, _) in lower.match_indices(marker) {
            if marker == "www." && lower[..i].chars().next_back().is_some_and(is_host_char) {
                continue; // part of a longer host, or of `https://www.` handled above
            }
            let host_start = if marker == "www." {
                i
            } else {
                i + marker.len()
            };
            let host = host_at(&lower, host_start);
            if host.is_empty() || SHORTENERS.iter().any(|d| on_domain(&host, d)) {
                continue;
            }
            if !allowed_domains
                .iter()
                .any(|d| on_domain(&host, &d.to_ascii_lowercase()))
            {
                found.push((i, LinkProblem::NotAllowed { host }));
            }
        }
    }

    found.sort_by_key(|(position, _)| *position);
    let mut problems: Vec<LinkProblem> = Vec::new();
    for (_, problem) in found {
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn refuses_every_shortener_with_or_without_scheme() {
        for d in SHORTENERS {
            for text in [
                format!("see {d}/abc"),
                format!("see https://{d}/abc"),
                format!("see http://www.{d}/x."),
                format!("({d}/q)"),
            ] {
                let problems = check(&text, &domains(SHORTENERS));
                assert!(
                    matches!(problems.as_slice(), [LinkProblem::Shortener { .. }]),
                    "{text}: {problems:?}"
                );
            }
        }
    }

    #[test]
    fn shortener_lookalikes_are_not_shorteners() {
        for text in [
            "a habit.ly formed",
            "visit at.com",
            "the sid is s.identity",
            "bit.lyrics",
            "call me at 5.",
        ] {
            assert!(
                check(text, &[])
                    .iter()
                    .all(|p| !matches!(p, LinkProblem::Shortener { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn links_must_be_on_listed_domains() {
        let allowed = domains(&["harbor.example"]);
        assert_eq!(check("https://www.harbor.example/x", &allowed), vec![]);
        assert_eq!(check("see www.harbor.example.", &allowed), vec![]);
        assert_eq!(
            check("see http://listings.harbor.example/42", &allowed),
            vec![]
        );
        assert_eq!(
            check("see https://evil.example/x", &allowed),
            vec![LinkProblem::NotAllowed {
                host: "evil.example".into()
            }]
        );
        assert_eq!(
            check("see https://harbor.example.evil.example/x", &allowed),
            vec![LinkProblem::NotAllowed {
                host: "harbor.example.evil.example".into()
            }]
        );
        assert_eq!(
            check("www.notharbor.example", &allowed),
            vec![LinkProblem::NotAllowed {
                host: "www.notharbor.example".into()
            }]
        );
        assert_eq!(check("HTTPS://WWW.HARBOR.EXAMPLE/X", &allowed), vec![]);
    }

    #[test]
    fn plain_text_has_no_links() {
        assert!(
            check(
                "Hi there, this is Sam at Harbor Realty. Reply STOP to opt out.",
                &[]
            )
            .is_empty()
        );
    }

    #[test]
    fn has_link_knows_schemes_and_www() {
        for (text, has) in [
            ("help at https://harbor.example/help", true),
            ("HTTP://harbor.example", true),
            ("see www.harbor.example", true),
            ("see harbor.example/help", false),
            ("the awww.example sound", false),
            ("call (555) 555-0100", false),
        ] {
            assert_eq!(has_link(text), has, "{text}");
        }
    }

    #[test]
    fn each_host_is_reported_once_in_order() {
        let problems = check("bit.ly/a https://x.example bit.ly/b", &[]);
        assert_eq!(
            problems,
            vec![
                LinkProblem::Shortener {
                    host: "bit.ly".into()
                },
                LinkProblem::NotAllowed {
                    host: "x.example".into()
                }
            ]
        );
    }
}
