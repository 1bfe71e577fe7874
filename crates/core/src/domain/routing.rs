//! Routing (docs/routing.md): which of a number's agents gets a new lead, who an incoming call
//! rings, where an unclaimed or unanswered lead moves. Pure: the agents' availability, the
//! number's mode and round-robin cursor and `now` in; a decision out, with every agent skipped
//! and why, for the thread's routing trace.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::language::Language;

/// `routing = "all" | "round_robin" | "first_to_claim"` on a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every available agent rings at once; the first available one in ring order owns a new
    /// lead.
    #[default]
    All,
    /// The next available agent in turn (weighted) owns a new lead.
    RoundRobin,
    /// A new lead is offered to every available agent; the first to claim it owns it.
    FirstToClaim,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::RoundRobin => "round_robin",
            Mode::FirstToClaim => "first_to_claim",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "all" => Some(Mode::All),
            "round_robin" => Some(Mode::RoundRobin),
            "first_to_claim" => Some(Mode::FirstToClaim),
            _ => None,
        }
    }
}

/// What an agent said of themself on their own page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Available,
    Away,
    /// Back on this date (in the brokerage's time zone): away before it.
    Vacation {
        back_on: NaiveDate,
    },
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "available",
            Availability::Away => "away",
            Availability::Vacation { .. } => "vacation",
        }
    }

    /// From the stored words; `None` for a vacation without its date.
    pub fn from_stored(word: &str, back_on: Option<NaiveDate>) -> Option<Availability> {
        match (word, back_on) {
            ("available", _) => Some(Availability::Available),
            ("away", _) => Some(Availability::Away),
            ("vacation", Some(back_on)) => Some(Availability::Vacation { back_on }),
            _ => None,
        }
    }
}

/// One agent as routing sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub agent_id: i64,
    /// 1..=10: how many turns of a round robin's cycle they take.
    pub weight: u8,
    /// Working hours, every day, in the brokerage's time zone; `None`: any hour.
    pub hours: Option<(NaiveTime, NaiveTime)>,
    pub availability: Availability,
    /// The languages they text in (`[[agents]] languages`).
    pub languages: Vec<Language>,
}

/// Why an agent was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    Away,
    Vacation {
        back_on: NaiveDate,
    },
    /// Outside their working hours.
    OffHours,
}

impl Unavailable {
    /// The trace's words: "Sam away: skipped".
    pub fn words(self) -> String {
        match self {
            Unavailable::Away => "away".to_owned(),
            Unavailable::Vacation { back_on } => {
                format!("on vacation until {}", back_on.format("%b %-d"))
            }
            Unavailable::OffHours => "outside working hours".to_owned(),
        }
    }

    /// The stored form (`conversation_event.detail`).
    pub fn code(self) -> String {
        match self {
            Unavailable::Away => "away".to_owned(),
            Unavailable::Vacation { back_on } => format!("vacation:{back_on}"),
            Unavailable::OffHours => "off_hours".to_owned(),
        }
    }

    pub fn from_code(code: &str) -> Option<Unavailable> {
        match code {
            "away" => Some(Unavailable::Away),
            "off_hours" => Some(Unavailable::OffHours),
            _ => code
                .strip_prefix("vacation:")
                .and_then(|d| d.parse().ok())
                .map(|back_on| Unavailable::Vacation { back_on }),
        }
    }
}

/// Whether `agent` takes leads at `now` (`tz`: the brokerage's time zone). A vacation ends by
/// itself on its date; away lasts until the agent switches back.
pub fn status(now: DateTime<Utc>, tz: Tz, agent: &Agent) -> Result<(), Unavailable> {
    let local = now.with_timezone(&tz);
    match agent.availability {
        Availability::Away => return Err(Unavailable::Away),
        Availability::Vacation { back_on } if local.date_naive() < back_on => {
            return Err(Unavailable::Vacation { back_on });
        }
        _ => {}
    }
    match agent.hours {
        Some((start, end)) if !(start <= local.time() && local.time() < end) => {
            Err(Unavailable::OffHours)
        }
        _ => Ok(()),
    }
}

/// Where a lead goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This agent owns it.
    Assign(i64),
    /// Offered to these agents (first to claim), in ring order.
    Offer(Vec<i64>),
    /// Nobody is available: the office's managers get it.
    Managers,
}

/// A routing decision with its trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub target: Target,
    /// Agents of the ring not available, in ring order, and why.
    pub skipped: Vec<(i64, Unavailable)>,
    /// The round robin's new cursor, when it moved.
    pub cursor: Option<i32>,
    /// The lead's language, when it narrowed the choice to the available agents who speak it.
    pub language: Option<Language>,
}

/// The round robin's cycle: each agent `weight` times, interleaved (weights 2 and 1 give
/// a, b, a), so a heavier agent's turns are spread through the cycle.
pub fn cycle(ring: &[Agent]) -> Vec<i64> {
    let rounds = ring.iter().map(|a| a.weight).max().unwrap_or(0);
    let mut out = Vec::new();
    for round in 0..rounds {
        out.extend(ring.iter().filter(|a| a.weight > round).map(|a| a.agent_id));
    }
    out
}

/// The next position of `cycle` after `cursor` whose agent is in `eligible`.
fn next_in_cycle(cycle: &[i64], cursor: Option<i32>, eligible: &[i64]) -> Option<usize> {
    if cycle.is_empty() {
        return None;
    }
    let len = cycle.len();
    let start = cursor.map_or(0, |c| (usize::try_from(c).unwrap_or(0) + 1) % len);
    (0..len)
        .map(|i| (start + i) % len)
        .find(|&i| eligible.contains(&cycle[i]))
}

fn split(now: DateTime<Utc>, tz: Tz, ring: &[Agent]) -> (Vec<i64>, Vec<(i64, Unavailable)>) {
    let mut available = Vec::new();
    let mut skipped = Vec::new();
    for agent in ring {
        match status(now, tz, agent) {
            Ok(()) => available.push(agent.agent_id),
            Err(why) => skipped.push((agent.agent_id, why)),
        }
    }
    (available, skipped)
}

/// Of `available`, those who speak `language`, when some do and some do not: a lead is
/// offered first to the agents who speak their language; when none of the available ones
/// does, all of them (README.md "Spanish").
fn speakers(ring: &[Agent], available: &[i64], language: Language) -> Option<Vec<i64>> {
    let speak: Vec<i64> = available
        .iter()
        .copied()
        .filter(|id| {
            ring.iter()
                .any(|a| a.agent_id == *id && a.languages.contains(&language))
        })
        .collect();
    (!speak.is_empty() && speak.len() < available.len()).then_some(speak)
}

fn round_robin(
    ring: &[Agent],
    cursor: Option<i32>,
    eligible: &[i64],
) -> Option<(i64, Option<i32>)> {
    let cycle = cycle(ring);
    next_in_cycle(&cycle, cursor, eligible).map(|i| (cycle[i], i32::try_from(i).ok()))
}

/// A new lead on a number (`ring` in ring order, `cursor` the round robin's last pick), who
/// writes in `language`.
pub fn route(
    mode: Mode,
    now: DateTime<Utc>,
    tz: Tz,
    ring: &[Agent],
    cursor: Option<i32>,
    language: Language,
) -> Decision {
    let (available, skipped) = split(now, tz, ring);
    if available.is_empty() {
        return Decision {
            target: Target::Managers,
            skipped,
            cursor: None,
            language: None,
        };
    }
    let narrowed = speakers(ring, &available, language);
    let eligible = narrowed.clone().unwrap_or(available);
    let (target, cursor) = match mode {
        Mode::All => (Target::Assign(eligible[0]), None),
        Mode::FirstToClaim => (Target::Offer(eligible), None),
        Mode::RoundRobin => match round_robin(ring, cursor, &eligible) {
            Some((agent, cursor)) => (Target::Assign(agent), cursor),
            None => (Target::Managers, None),
        },
    };
    Decision {
        target,
        skipped,
        cursor,
        language: narrowed.map(|_| language),
    }
}

/// An offer nobody claimed within `claim_timeout`: round robin among the agents available
/// now, then the office's managers.
pub fn after_claim_timeout(
    now: DateTime<Utc>,
    tz: Tz,
    ring: &[Agent],
    cursor: Option<i32>,
    language: Language,
) -> Decision {
    let mut decision = route(Mode::RoundRobin, now, tz, ring, cursor, language);
    if let Target::Offer(_) = decision.target {
        decision.target = Target::Managers;
    }
    decision
}

/// The escalation's move (`escalate_after` of silence): to the next available agent after
/// `current` by the number's routing (round robin: in turn; otherwise the next in ring order),
/// never back to `current`; else the office's managers.
pub fn reassign(
    mode: Mode,
    now: DateTime<Utc>,
    tz: Tz,
    ring: &[Agent],
    cursor: Option<i32>,
    current: Option<i64>,
    language: Language,
) -> Decision {
    let (available, skipped) = split(now, tz, ring);
    let others: Vec<i64> = available
        .iter()
        .copied()
        .filter(|a| Some(*a) != current)
        .collect();
    let narrowed = speakers(ring, &others, language);
    let eligible = narrowed.clone().unwrap_or(others);
    let picked = match mode {
        Mode::RoundRobin => round_robin(ring, cursor, &eligible),
        Mode::All | Mode::FirstToClaim => {
            let from = current.and_then(|c| ring.iter().position(|a| a.agent_id == c));
            let order: Vec<i64> = match from {
                Some(p) => ring[p + 1..]
                    .iter()
                    .chain(&ring[..p])
                    .map(|a| a.agent_id)
                    .collect(),
                None => ring.iter().map(|a| a.agent_id).collect(),
            };
            order
                .into_iter()
                .find(|a| eligible.contains(a))
                .map(|a| (a, None))
        }
    };
    match picked {
        Some((agent, cursor)) => Decision {
            target: Target::Assign(agent),
            skipped,
            cursor,
            language: narrowed.map(|_| language),
        },
        None => Decision {
            target: Target::Managers,
            skipped,
            cursor: None,
            language: None,
        },
    }
}

/// The manager who owns a lead nobody else can take: the first available of the office's
/// managers (by their order), else the first. `None` when the office has none.
pub fn pick_manager(now: DateTime<Utc>, tz: Tz, managers: &[Agent]) -> Option<i64> {
    managers
        .iter()
        .find(|m| status(now, tz, m).is_ok())
        .or(managers.first())
        .map(|m| m.agent_id)
}

/// Who an incoming call rings (agent ids, rung at once): with `all`, every available agent of
/// the ring; otherwise the lead's owner alone when they are available, else every available
/// agent (a first-to-claim lead's offer: the one who answers claims it). Nobody available:
/// empty, and the caller rings the office's managers.
pub fn ring_for_call(
    mode: Mode,
    now: DateTime<Utc>,
    tz: Tz,
    ring: &[Agent],
    owner: Option<i64>,
) -> Vec<i64> {
    let (available, _) = split(now, tz, ring);
    match (mode, owner) {
        (Mode::All, _) | (_, None) => available,
        (_, Some(owner)) if available.contains(&owner) => vec![owner],
        _ => available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const NY: Tz = chrono_tz::America::New_York;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        NY.with_ymd_and_hms(2026, 12, 3, h, m, 0)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn agent(id: i64) -> Agent {
        Agent {
            agent_id: id,
            weight: 1,
            hours: None,
            availability: Availability::Available,
            languages: vec![Language::En],
        }
    }

    fn speaks(id: i64, languages: &[Language]) -> Agent {
        Agent {
            languages: languages.to_vec(),
            ..agent(id)
        }
    }

    /// Issue 20 §4: a Spanish-speaking lead goes first to the available agents who speak
    /// Spanish, in every mode; when none of them is available, to whoever is.
    #[test]
    fn a_lead_goes_first_to_the_agents_who_speak_their_language() {
        use Language::{En, Es};
        let ring = vec![
            speaks(1, &[En]),
            speaks(2, &[En, Es]),
            speaks(3, &[En]),
            speaks(4, &[Es, En]),
        ];
        let now = at(10, 0);
        let d = route(Mode::All, now, NY, &ring, None, Es);
        assert_eq!((d.target, d.language), (Target::Assign(2), Some(Es)));
        let d = route(Mode::All, now, NY, &ring, None, En);
        assert_eq!(
            (d.target, d.language),
            (Target::Assign(1), None),
            "all speak English"
        );
        let d = route(Mode::FirstToClaim, now, NY, &ring, None, Es);
        assert_eq!(d.target, Target::Offer(vec![2, 4]));
        // The round robin takes turns among the speakers, its cursor over the whole cycle.
        let d = route(Mode::RoundRobin, now, NY, &ring, Some(1), Es);
        assert_eq!((d.target, d.cursor), (Target::Assign(4), Some(3)));
        let d = route(Mode::RoundRobin, now, NY, &ring, Some(3), Es);
        assert_eq!((d.target, d.cursor), (Target::Assign(2), Some(1)));
        // The speakers away: whoever is available, and the decision does not claim a language.
        let mut away = ring.clone();
        away[1].availability = Availability::Away;
        away[3].availability = Availability::Away;
        let d = route(Mode::All, now, NY, &away, None, Es);
        assert_eq!((d.target, d.language), (Target::Assign(1), None));
        // The escalation moves it to another speaker first, never back to the current owner.
        let d = reassign(Mode::All, now, NY, &ring, None, Some(2), Es);
        assert_eq!((d.target, d.language), (Target::Assign(4), Some(Es)));
        let d = reassign(Mode::All, now, NY, &ring, None, Some(4), Es);
        assert_eq!(d.target, Target::Assign(2));
        let only_current = vec![speaks(1, &[En]), speaks(2, &[Es])];
        let d = reassign(Mode::All, now, NY, &only_current, None, Some(2), Es);
        assert_eq!((d.target, d.language), (Target::Assign(1), None));
        let d = after_claim_timeout(now, NY, &ring, None, Es);
        assert_eq!(d.target, Target::Assign(2));
    }

    fn t(h: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, 0, 0).unwrap_or_default()
    }

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap_or_default()
    }

    /// The switch, the working hours (start, end hour), the hour and minute of `now` in New York
    /// (on a fixed day), the answer.
    type AvailabilityCase = (
        Availability,
        Option<(u32, u32)>,
        (u32, u32),
        Result<(), Unavailable>,
    );

    #[test]
    fn availability_is_the_switch_then_the_working_hours() {
        let cases: &[AvailabilityCase] = &[
            (Availability::Available, None, (3, 0), Ok(())),
            (Availability::Away, None, (12, 0), Err(Unavailable::Away)),
            (
                Availability::Away,
                Some((9, 18)),
                (3, 0),
                Err(Unavailable::Away),
            ),
            // Back on the 5th: away on the 3rd, in the brokerage's zone.
            (
                Availability::Vacation { back_on: date(5) },
                None,
                (12, 0),
                Err(Unavailable::Vacation { back_on: date(5) }),
            ),
            // Back on the 3rd: available from local midnight on.
            (
                Availability::Vacation { back_on: date(3) },
                None,
                (0, 1),
                Ok(()),
            ),
            (
                Availability::Vacation { back_on: date(1) },
                None,
                (12, 0),
                Ok(()),
            ),
            (
                Availability::Available,
                Some((9, 18)),
                (8, 59),
                Err(Unavailable::OffHours),
            ),
            (Availability::Available, Some((9, 18)), (9, 0), Ok(())),
            (Availability::Available, Some((9, 18)), (17, 59), Ok(())),
            (
                Availability::Available,
                Some((9, 18)),
                (18, 0),
                Err(Unavailable::OffHours),
            ),
        ];
        for (i, (availability, hours, (h, m), want)) in cases.iter().enumerate() {
            let a = Agent {
                languages: vec![Language::En],
                hours: hours.map(|(s, e)| (t(s), t(e))),
                availability: *availability,
                ..agent(1)
            };
            assert_eq!(status(at(*h, *m), NY, &a), *want, "case {i}");
        }
    }

    #[test]
    fn vacation_ends_on_the_brokerages_date_not_utcs() {
        // 23:30 on the 4th in New York is the 5th in UTC: still on vacation.
        let a = Agent {
            languages: vec![Language::En],
            availability: Availability::Vacation { back_on: date(5) },
            ..agent(1)
        };
        let late = NY
            .with_ymd_and_hms(2026, 12, 4, 23, 30, 0)
            .single()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert!(status(late, NY, &a).is_err());
    }

    #[test]
    fn all_gives_the_lead_to_the_first_available_in_ring_order() {
        let ring = [
            Agent {
                languages: vec![Language::En],
                availability: Availability::Away,
                ..agent(1)
            },
            agent(2),
            agent(3),
        ];
        let d = route(Mode::All, at(10, 0), NY, &ring, None, Language::En);
        assert_eq!(d.target, Target::Assign(2));
        assert_eq!(d.skipped, vec![(1, Unavailable::Away)]);
        assert_eq!(d.cursor, None);
    }

    #[test]
    fn round_robin_takes_turns_and_skips_who_is_away_without_owing_them() {
        let mut ring = vec![agent(1), agent(2), agent(3)];
        let mut cursor = None;
        let mut got = Vec::new();
        for _ in 0..4 {
            let d = route(Mode::RoundRobin, at(10, 0), NY, &ring, cursor, Language::En);
            let Target::Assign(a) = d.target else {
                panic!("{d:?}")
            };
            got.push(a);
            cursor = d.cursor;
        }
        assert_eq!(got, [1, 2, 3, 1]);
        // 2 goes away: skipped, and the turn passes to 3; back, they take the next turn in
        // the cycle, not a run of catch-up leads.
        ring[1].availability = Availability::Away;
        let d = route(Mode::RoundRobin, at(10, 0), NY, &ring, cursor, Language::En);
        assert_eq!(
            (d.target.clone(), d.skipped.clone()),
            (Target::Assign(3), vec![(2, Unavailable::Away)])
        );
        cursor = d.cursor;
        ring[1].availability = Availability::Available;
        let mut after = Vec::new();
        for _ in 0..3 {
            let d = route(Mode::RoundRobin, at(10, 0), NY, &ring, cursor, Language::En);
            if let Target::Assign(a) = d.target {
                after.push(a);
            }
            cursor = d.cursor;
        }
        assert_eq!(after, [1, 2, 3]);
    }

    #[test]
    fn weights_interleave_in_the_cycle() {
        let ring = [
            Agent {
                languages: vec![Language::En],
                weight: 2,
                ..agent(1)
            },
            agent(2),
            Agent {
                languages: vec![Language::En],
                weight: 3,
                ..agent(3)
            },
        ];
        assert_eq!(cycle(&ring), [1, 2, 3, 1, 3, 3]);
    }

    #[test]
    fn first_to_claim_offers_every_available_agent() {
        let ring = [
            agent(1),
            Agent {
                languages: vec![Language::En],
                hours: Some((t(9), t(12))),
                ..agent(2)
            },
            agent(3),
        ];
        let d = route(
            Mode::FirstToClaim,
            at(14, 0),
            NY,
            &ring,
            Some(1),
            Language::En,
        );
        assert_eq!(d.target, Target::Offer(vec![1, 3]));
        assert_eq!(d.skipped, vec![(2, Unavailable::OffHours)]);
    }

    #[test]
    fn nobody_available_goes_to_the_managers_in_every_mode() {
        let ring = [
            Agent {
                languages: vec![Language::En],
                availability: Availability::Away,
                ..agent(1)
            },
            Agent {
                languages: vec![Language::En],
                availability: Availability::Vacation { back_on: date(9) },
                ..agent(2)
            },
        ];
        for mode in [Mode::All, Mode::RoundRobin, Mode::FirstToClaim] {
            let d = route(mode, at(10, 0), NY, &ring, None, Language::En);
            assert_eq!(d.target, Target::Managers, "{mode:?}");
            assert_eq!(d.skipped.len(), 2);
        }
        assert_eq!(
            route(Mode::All, at(10, 0), NY, &[], None, Language::En).target,
            Target::Managers
        );
    }

    #[test]
    fn an_unclaimed_offer_falls_back_to_round_robin_then_managers() {
        let ring = [agent(1), agent(2)];
        assert_eq!(
            after_claim_timeout(at(10, 0), NY, &ring, Some(0), Language::En).target,
            Target::Assign(2)
        );
        let away = [Agent {
            languages: vec![Language::En],
            availability: Availability::Away,
            ..agent(1)
        }];
        assert_eq!(
            after_claim_timeout(at(10, 0), NY, &away, None, Language::En).target,
            Target::Managers
        );
    }

    #[test]
    fn the_escalation_moves_the_lead_away_from_its_owner() {
        let ring = [agent(1), agent(2), agent(3)];
        // In ring order after the owner, wrapping.
        assert_eq!(
            reassign(Mode::All, at(10, 0), NY, &ring, None, Some(3), Language::En).target,
            Target::Assign(1)
        );
        assert_eq!(
            reassign(
                Mode::FirstToClaim,
                at(10, 0),
                NY,
                &ring,
                None,
                Some(1),
                Language::En
            )
            .target,
            Target::Assign(2)
        );
        // Round robin: the next turn that is not the owner's.
        let d = reassign(
            Mode::RoundRobin,
            at(10, 0),
            NY,
            &ring,
            Some(0),
            Some(2),
            Language::En,
        );
        assert_eq!((d.target, d.cursor), (Target::Assign(3), Some(2)));
        // The owner alone is available: the managers.
        let only = [
            agent(1),
            Agent {
                languages: vec![Language::En],
                availability: Availability::Away,
                ..agent(2)
            },
        ];
        assert_eq!(
            reassign(Mode::All, at(10, 0), NY, &only, None, Some(1), Language::En).target,
            Target::Managers
        );
        // An owner who is not in the ring (a manager) hands it to the first available.
        assert_eq!(
            reassign(Mode::All, at(10, 0), NY, &ring, None, Some(9), Language::En).target,
            Target::Assign(1)
        );
    }

    #[test]
    fn a_call_rings_the_owner_alone_unless_the_number_rings_all() {
        let ring = [
            agent(1),
            agent(2),
            Agent {
                languages: vec![Language::En],
                availability: Availability::Away,
                ..agent(3)
            },
        ];
        assert_eq!(
            ring_for_call(Mode::All, at(10, 0), NY, &ring, Some(2)),
            [1, 2]
        );
        assert_eq!(
            ring_for_call(Mode::RoundRobin, at(10, 0), NY, &ring, Some(2)),
            [2]
        );
        assert_eq!(
            ring_for_call(Mode::FirstToClaim, at(10, 0), NY, &ring, None),
            [1, 2]
        );
        // The owner is away: everyone available rings.
        assert_eq!(
            ring_for_call(Mode::RoundRobin, at(10, 0), NY, &ring, Some(3)),
            [1, 2]
        );
    }

    #[test]
    fn the_manager_is_the_first_available_one_else_the_first() {
        let m = [
            Agent {
                languages: vec![Language::En],
                availability: Availability::Away,
                ..agent(7)
            },
            agent(8),
        ];
        assert_eq!(pick_manager(at(10, 0), NY, &m), Some(8));
        let all_away = [Agent {
            languages: vec![Language::En],
            availability: Availability::Away,
            ..agent(7)
        }];
        assert_eq!(pick_manager(at(10, 0), NY, &all_away), Some(7));
        assert_eq!(pick_manager(at(10, 0), NY, &[]), None);
    }

    #[test]
    fn unavailable_codes_read_back() {
        for u in [
            Unavailable::Away,
            Unavailable::OffHours,
            Unavailable::Vacation { back_on: date(9) },
        ] {
            assert_eq!(Unavailable::from_code(&u.code()), Some(u));
        }
        assert_eq!(Unavailable::from_code("vacation:soon"), None);
        assert_eq!(
            Unavailable::Vacation { back_on: date(9) }.words(),
            "on vacation until Dec 9"
        );
    }

    proptest! {
        /// Over whole cycles with everyone available, each agent gets exactly `weight` leads
        /// per cycle, whatever the weights and the starting cursor.
        #[test]
        fn round_robin_is_fair_to_the_weights(weights in proptest::collection::vec(1u8..=4, 1..6), start in 0i32..20) {
            let ring: Vec<Agent> = weights.iter().enumerate().map(|(i, w)| Agent { weight: *w, ..agent(i as i64) }).collect();
            let len = cycle(&ring).len();
            let mut cursor = Some(start % len as i32);
            let mut counts = vec![0u32; ring.len()];
            for _ in 0..len * 3 {
                let d = route(Mode::RoundRobin, at(10, 0), NY, &ring, cursor, Language::En);
                let Target::Assign(a) = d.target else { panic!("{d:?}") };
                counts[a as usize] += 1;
                cursor = d.cursor;
            }
            for (i, w) in weights.iter().enumerate() {
                prop_assert_eq!(counts[i], u32::from(*w) * 3);
            }
        }

        /// Never assigned or offered to an agent who is not available.
        #[test]
        fn routing_never_picks_an_unavailable_agent(away in proptest::collection::vec(any::<bool>(), 1..6), mode in 0u8..3, cursor in proptest::option::of(0i32..10)) {
            let ring: Vec<Agent> = away.iter().enumerate().map(|(i, a)| Agent {
                languages: vec![Language::En],
                availability: if *a { Availability::Away } else { Availability::Available },
                ..agent(i as i64)
            }).collect();
            let mode = [Mode::All, Mode::RoundRobin, Mode::FirstToClaim][mode as usize];
            let d = route(mode, at(10, 0), NY, &ring, cursor, Language::En);
            let picked: Vec<i64> = match d.target {
                Target::Assign(a) => vec![a],
                Target::Offer(v) => v,
                Target::Managers => { prop_assert!(away.iter().all(|a| *a)); vec![] }
            };
            for a in picked {
                prop_assert!(!away[a as usize]);
            }
            prop_assert_eq!(d.skipped.len(), away.iter().filter(|a| **a).count());
        }
    }
}
