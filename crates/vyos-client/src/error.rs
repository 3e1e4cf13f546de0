//! What can go wrong talking to VyOS, told apart the way the operator reacts.

use std::time::Duration;

/// An error from [`crate::VyosClient`]. Texts never contain the API key.
#[derive(Debug, thiserror::Error)]
pub enum VyosError {
    /// The client configuration is unusable (bad endpoint URL, bad CA bundle).
    #[error("invalid VyOS client configuration: {0}")]
    Config(String),
    /// The router refused the API key (HTTP 401), or nginx refused the client (403).
    #[error("VyOS refused the credentials (HTTP {status}): {message}")]
    Auth {
        /// 401 or 403.
        status: u16,
        /// The router's text.
        message: String,
    },
    /// The TLS handshake failed: unknown CA, wrong name, expired, or not TLS at all.
    #[error("TLS with the VyOS router failed: {message}")]
    Tls {
        /// The deepest TLS error text found (e.g. `invalid peer certificate: UnknownIssuer`).
        message: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// No connection, or the connection broke (refused, reset, DNS failure).
    #[error("VyOS router unreachable: {source}")]
    Unreachable {
        /// `true` when no connection was made (the request cannot have been applied).
        connect: bool,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// No answer within the timeout. For a write the outcome is unknown: re-read first.
    #[error("VyOS request timed out after {after:?}; a write may or may not have been applied")]
    Timeout {
        /// The configured timeout.
        after: Duration,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// VyOS rejected an operation (HTTP 400 before any commit: a path outside the schema,
    /// a value that fails its validator, a malformed request). Nothing was applied.
    #[error("VyOS rejected the request: {message}")]
    Rejected {
        /// VyOS's own text (HTML-unescaped).
        message: String,
    },
    /// The commit failed (HTTP 400 with `Commit failed`). Nothing of the failing
    /// component was applied. On 1.4 the text usually carries no reason.
    #[error("VyOS commit failed: {message}")]
    CommitFailed {
        /// VyOS's own text (HTML-unescaped).
        message: String,
    },
    /// Another commit held the configuration lock. Nothing was applied; retry later.
    #[error("VyOS is busy: {message}")]
    Busy {
        /// VyOS's own text.
        message: String,
    },
    /// A commit-confirm was asked for while another is pending. The commit itself
    /// **was** applied; confirm the pending one.
    #[error("VyOS applied the commit but another commit-confirm is pending: {message}")]
    ConfirmPending {
        /// VyOS's own text.
        message: String,
    },
    /// The body exceeded the router's `request-body-size-limit` (HTTP 413). Nothing
    /// was applied; send smaller requests.
    #[error("request body too large for the VyOS router (HTTP 413)")]
    PayloadTooLarge,
    /// Any other HTTP status: 404/405 (API or `api rest` not enabled, or an endpoint
    /// this version lacks), 500 (VyOS internal error), 502/503/504 (API down or slow).
    #[error("VyOS answered HTTP {status}: {message}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of the body or VyOS's error text.
        message: String,
    },
    /// The answer is not VyOS's JSON envelope, or its data is not what was asked for.
    #[error("malformed VyOS response: {message}")]
    MalformedResponse {
        /// What was wrong.
        message: String,
    },
}

impl VyosError {
    /// Whether trying again later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            VyosError::Unreachable { .. } | VyosError::Timeout { .. } | VyosError::Busy { .. } => {
                true
            }
            VyosError::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// Whether a write may have been applied although it reported an error (timeout,
    /// a connection lost after sending, a gateway timeout). Re-read before retrying.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            VyosError::Timeout { .. } => true,
            VyosError::Unreachable { connect, .. } => !connect,
            VyosError::Http { status, .. } => matches!(status, 502 | 504),
            VyosError::ConfirmPending { .. } => true,
            _ => false,
        }
    }

    /// A fixed label for Events and metrics: `AuthFailed`, `TLSError`,
    /// `RouterUnreachable`, `RouterBusy`, `CommitFailed`, `Rejected`, `RouterError`,
    /// `MalformedResponse` or `InvalidConfig`.
    pub fn category(&self) -> &'static str {
        match self {
            VyosError::Config(_) => "InvalidConfig",
            VyosError::Auth { .. } => "AuthFailed",
            VyosError::Tls { .. } => "TLSError",
            VyosError::Unreachable { .. } | VyosError::Timeout { .. } => "RouterUnreachable",
            VyosError::Busy { .. } => "RouterBusy",
            VyosError::CommitFailed { .. } => "CommitFailed",
            VyosError::Rejected { .. }
            | VyosError::ConfirmPending { .. }
            | VyosError::PayloadTooLarge => "Rejected",
            VyosError::Http {
                status: 502..=504, ..
            } => "RouterUnreachable",
            VyosError::Http { .. } => "RouterError",
            VyosError::MalformedResponse { .. } => "MalformedResponse",
        }
    }

    /// VyOS's own error text, when the router sent one.
    pub fn vyos_message(&self) -> Option<&str> {
        match self {
            VyosError::Auth { message, .. }
            | VyosError::Rejected { message }
            | VyosError::CommitFailed { message }
            | VyosError::Busy { message }
            | VyosError::ConfirmPending { message } => Some(message),
            _ => None,
        }
    }

    /// For a commit failure that names a NAT rule (1.5: `... NAT configuration error
    /// in rule 100: ...`), that rule's number. `None` on 1.4, which gives no reason.
    pub fn failed_nat_rule(&self) -> Option<u32> {
        let VyosError::CommitFailed { message } = self else {
            return None;
        };
        let flat = message.split_whitespace().collect::<Vec<_>>().join(" ");
        let rest = flat.split("NAT configuration error in rule ").nth(1)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }
}

/// Undoes VyOS 1.5's `html.escape(quote=False)` (`&amp;`, `&lt;`, `&gt;`).
pub(crate) fn html_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Sorts a VyOS error text (HTTP 400, or `success: false`) into a variant.
pub(crate) fn classify_error_text(text: &str) -> VyosError {
    let message = html_unescape(text).trim_end().to_owned();
    if message.contains("temporarily locked due to another commit in progress") {
        VyosError::Busy { message }
    } else if message.contains("Another confirm is pending") {
        VyosError::ConfirmPending { message }
    } else if message.contains("Commit failed") || message.contains("]] failed") {
        VyosError::CommitFailed { message }
    } else {
        VyosError::Rejected { message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_vyos_texts() {
        let e = classify_error_text("[[nat]] failed\nCommit failed\n");
        assert_eq!(e.category(), "CommitFailed");
        assert_eq!(e.failed_nat_rule(), None);
        let e = classify_error_text(
            "[ nat ]\nDestination NAT configuration error in rule 100: ports can only be\nspecified when protocol is either tcp, udp or tcp_udp!\n\n[[nat]] failed\nCommit failed\n",
        );
        assert_eq!(e.failed_nat_rule(), Some(100));
        assert!(!e.is_transient());
        let e = classify_error_text(
            "Configuration system temporarily locked due to another commit in progress",
        );
        assert_eq!(e.category(), "RouterBusy");
        assert!(e.is_transient());
        let e = classify_error_text(
            "Error: 99999 is not a valid port\nInvalid value\nValue validation failed\nSet failed\n",
        );
        assert_eq!(e.category(), "Rejected");
        let e = classify_error_text(
            "Configuration path: [nat destination rule 1 foo] is not valid\n\nSet failed",
        );
        assert!(matches!(e, VyosError::Rejected { .. }));
        let e = classify_error_text("Another confirm is pending");
        assert!(e.outcome_unknown());
        assert_eq!(
            classify_error_text("a &lt;b&gt; &amp;amp;").vyos_message(),
            Some("a <b> &amp;")
        );
    }
}
