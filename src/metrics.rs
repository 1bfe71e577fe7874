//! Prometheus metrics (`GET /metrics`), the names of README.md "Operations". Labels carry endpoint, kind,
//! outcome and rule names only, never a phone number or any other personal data
//! (docs/security.md §2 "secrets").

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub endpoint: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TextLabels {
    pub kind: &'static str,
    pub status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GateLabels {
    pub decision: &'static str,
    pub rule: &'static str,
    pub reason: &'static str,
}

pub struct Metrics {
    /// Job handlers that returned (not exported; `textback-bench queue` reads it).
    pub handled: std::sync::atomic::AtomicU64,
    registry: Registry,
    webhooks: Family<WebhookLabels, Counter>,
    jobs: Family<JobLabels, Counter>,
    texts: Family<TextLabels, Counter>,
    gate: Family<GateLabels, Counter>,
    deliveries: Family<JobLabels, Counter>,
    text_back_delay: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let webhooks = Family::<WebhookLabels, Counter>::default();
        let jobs = Family::<JobLabels, Counter>::default();
        let texts = Family::<TextLabels, Counter>::default();
        let gate = Family::<GateLabels, Counter>::default();
        let deliveries = Family::<JobLabels, Counter>::default();
        let text_back_delay = Histogram::new([
            0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0,
        ]);
        // The text encoder appends `_total` to counters.
        registry.register(
            "textback_webhooks",
            "Twilio webhook requests by endpoint and outcome (ok, duplicate, unknown_number, unknown_sid, bad_signature, bad_request, malformed, media_type, too_large, timeout, method, error)",
            webhooks.clone(),
        );
        registry.register(
            "textback_jobs",
            "Jobs by kind and how a run of them ended (sent, done, cancelled, skipped, dead, needs_review, retry, reconciling, deferred, error, lost_lease)",
            jobs.clone(),
        );
        registry.register(
            "textback_texts",
            "Text sends by kind and class (accepted, failed_certain, rejected, unknown)",
            texts.clone(),
        );
        registry.register(
            "textback_gate_decisions",
            "Compliance gate decisions by decision, rule (compliance.md R-number) and reason code",
            gate.clone(),
        );
        registry.register(
            "textback_deliveries",
            "Outbound webhook and Follow Up Boss delivery attempts by kind (webhook, follow_up_boss) and outcome (delivered, failed)",
            deliveries.clone(),
        );
        registry.register(
            "textback_text_back_delay_seconds",
            "Missed call recorded to text-back accepted by the carrier, minus the configured hold",
            text_back_delay.clone(),
        );
        Metrics {
            handled: std::sync::atomic::AtomicU64::new(0),
            registry,
            webhooks,
            jobs,
            texts,
            gate,
            deliveries,
            text_back_delay,
        }
    }
}

impl Metrics {
    pub fn webhook(&self, endpoint: &'static str, outcome: &'static str) {
        self.webhooks
            .get_or_create(&WebhookLabels { endpoint, outcome })
            .inc();
    }

    /// The current value of one webhook counter (tests read it).
    pub fn webhook_count(&self, endpoint: &'static str, outcome: &'static str) -> u64 {
        self.webhooks
            .get_or_create(&WebhookLabels { endpoint, outcome })
            .get()
    }

    pub fn delivery(&self, kind: &str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn job(&self, kind: &str, outcome: &'static str) {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn job_count(&self, kind: &str, outcome: &'static str) -> u64 {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome,
            })
            .get()
    }

    pub fn text(&self, kind: &'static str, status: &'static str) {
        self.texts.get_or_create(&TextLabels { kind, status }).inc();
    }

    pub fn text_count(&self, kind: &'static str, status: &'static str) -> u64 {
        self.texts.get_or_create(&TextLabels { kind, status }).get()
    }

    pub fn gate(&self, decision: &'static str, rule: &'static str, reason: &'static str) {
        self.gate
            .get_or_create(&GateLabels {
                decision,
                rule,
                reason,
            })
            .inc();
    }

    pub fn text_back_delay(&self, seconds: f64) {
        self.text_back_delay.observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_with_their_labels() {
        let m = Metrics::default();
        m.webhook("/twilio/voice", "bad_signature");
        m.webhook("/twilio/voice", "bad_signature");
        m.job("text_back", "sent");
        m.text("text_back", "accepted");
        m.gate("skip", "R1", "opted_out");
        m.text_back_delay(0.2);
        let text = m.render();
        for line in [
            r#"textback_webhooks_total{endpoint="/twilio/voice",outcome="bad_signature"} 2"#,
            r#"textback_jobs_total{kind="text_back",outcome="sent"} 1"#,
            r#"textback_texts_total{kind="text_back",status="accepted"} 1"#,
            r#"textback_gate_decisions_total{decision="skip",rule="R1",reason="opted_out"} 1"#,
            "textback_text_back_delay_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert_eq!(m.webhook_count("/twilio/voice", "bad_signature"), 2);
    }
}
