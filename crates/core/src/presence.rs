//! Agent presence: `online` while a socket is connected and active, `away` by choice or after a
//! stretch without activity, `offline` when no socket is connected. Presence feeds routing.

use crate::model::str_enum;
use crate::time::Timestamp;

str_enum!(
    /// What colleagues see, and what routing checks.
    PresenceStatus { Online = "online", Away = "away", Offline = "offline" }
);

/// An agent's presence from the facts the server keeps: are they connected, did they choose
/// `away`, and when did their client last show activity. `idle_after_minutes = None` never turns an
/// idle agent away. Idle for exactly the limit counts as away.
pub fn status(
    connected: bool,
    away_by_choice: bool,
    last_activity: Timestamp,
    idle_after_minutes: Option<u32>,
    now: Timestamp,
) -> PresenceStatus {
    if !connected {
        return PresenceStatus::Offline;
    }
    if away_by_choice {
        return PresenceStatus::Away;
    }
    match idle_after_minutes {
        Some(m) if now >= last_activity.plus_minutes(i64::from(m)) => PresenceStatus::Away,
        _ => PresenceStatus::Online,
    }
}

#[cfg(test)]
mod tests {
    use super::PresenceStatus::*;
    use super::*;

    #[test]
    fn presence_table() {
        let t0 = Timestamp(1_000_000);
        let idle = Some(10);
        let cases = [
            ("not connected", false, false, t0, idle, Offline),
            (
                "away by choice, not connected",
                false,
                true,
                t0,
                idle,
                Offline,
            ),
            ("connected and active", true, false, t0, idle, Online),
            ("away by choice", true, true, t0, idle, Away),
            (
                "idle one ms short of the limit",
                true,
                false,
                t0.plus_minutes(10).plus_millis(-1),
                idle,
                Online,
            ),
            (
                "idle exactly the limit",
                true,
                false,
                t0.plus_minutes(10),
                idle,
                Away,
            ),
            (
                "idle for hours, no idle limit",
                true,
                false,
                t0.plus_hours(5),
                None,
                Online,
            ),
        ];
        for (why, connected, away, now, idle, want) in cases {
            assert_eq!(status(connected, away, t0, idle, now), want, "{why}");
        }
    }
}
