//! The car search request (validated by search-start, run by search-worker) and
//! the car classes both sides agree on.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use time::Date;

/// Car classes, smallest first: the "upgrade class" of an offer is the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CarSize {
    Economy,
    Compact,
    Midsize,
    Fullsize,
    Suv,
    Luxury,
    Van,
}

impl CarSize {
    pub const ALL: [CarSize; 7] =
        [CarSize::Economy, CarSize::Compact, CarSize::Midsize, CarSize::Fullsize, CarSize::Suv, CarSize::Luxury, CarSize::Van];

    pub fn name(self) -> &'static str {
        match self {
            CarSize::Economy => "economy",
            CarSize::Compact => "compact",
            CarSize::Midsize => "midsize",
            CarSize::Fullsize => "fullsize",
            CarSize::Suv => "suv",
            CarSize::Luxury => "luxury",
            CarSize::Van => "van",
        }
    }

    /// Case-insensitive; also the usual words ("small", "intermediate", "full-size").
    pub fn parse(s: &str) -> Option<CarSize> {
        let s = s.trim().to_ascii_lowercase().replace(['-', '_', ' '], "");
        Some(match s.as_str() {
            "economy" | "mini" => CarSize::Economy,
            "compact" | "small" => CarSize::Compact,
            "midsize" | "intermediate" | "medium" | "standard" => CarSize::Midsize,
            "fullsize" | "full" | "large" => CarSize::Fullsize,
            "suv" => CarSize::Suv,
            "luxury" | "premium" => CarSize::Luxury,
            "van" | "minivan" => CarSize::Van,
            _ => return None,
        })
    }

    pub fn upgrade(self) -> Option<CarSize> {
        let i = CarSize::ALL.iter().position(|c| *c == self)?;
        CarSize::ALL.get(i + 1).copied()
    }

    pub fn names() -> String {
        CarSize::ALL.map(CarSize::name).join(", ")
    }
}

/// A validated search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    pub location: String,
    /// `YYYY-MM-DD`.
    pub pickup_date: String,
    /// `YYYY-MM-DD`.
    pub return_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub car_size: Option<CarSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_age: Option<u8>,
}

impl SearchRequest {
    /// Rental days, at least 1.
    pub fn days(&self) -> i64 {
        match (parse_date(&self.pickup_date), parse_date(&self.return_date)) {
            (Some(a), Some(b)) => (b - a).whole_days().max(1),
            _ => 1,
        }
    }
}

/// What search-start sends search-worker (asynchronously) to run a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartSearch {
    pub token: String,
    pub request: SearchRequest,
}

/// The longest rental we search for.
pub const MAX_RENTAL_DAYS: i64 = 90;
/// How far ahead a pickup may be.
pub const MAX_DAYS_AHEAD: i64 = 365;

pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// Field name → what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

/// Validate a search body (`{"location", "pickupDate", "returnDate", "carSize"?,
/// "driverAge"?}`) against `today`, reporting every bad field.
pub fn validate(body: &Value, today: Date) -> Result<SearchRequest, FieldErrors> {
    let mut errors = FieldErrors::new();
    let Some(obj) = body.as_object() else {
        errors.insert("body".into(), "must be a JSON object".into());
        return Err(errors);
    };
    const KNOWN: [&str; 5] = ["location", "pickupDate", "returnDate", "carSize", "driverAge"];
    for key in obj.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
        errors.insert(key.clone(), format!("unknown field; expected {}", KNOWN.join(", ")));
    }
    let text = |name: &str, errors: &mut FieldErrors| -> Option<String> {
        match obj.get(name) {
            None | Some(Value::Null) => {
                errors.insert(name.into(), "is required".into());
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                errors.insert(name.into(), "must not be empty".into());
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => {
                errors.insert(name.into(), "must be a string".into());
                None
            }
        }
    };
    let location = text("location", &mut errors);
    if let Some(l) = &location {
        if l.chars().count() > 100 {
            errors.insert("location".into(), "must be at most 100 characters".into());
        } else if l.chars().any(char::is_control) {
            errors.insert("location".into(), "must not contain control characters".into());
        }
    }
    let date = |name: &str, errors: &mut FieldErrors| -> Option<Date> {
        let s = text(name, errors)?;
        match parse_date(&s) {
            Some(d) => Some(d),
            None => {
                errors.insert(name.into(), format!("`{s}` is not a date; use YYYY-MM-DD"));
                None
            }
        }
    };
    let pickup = date("pickupDate", &mut errors);
    let ret = date("returnDate", &mut errors);
    if let Some(p) = pickup {
        if p < today {
            errors.insert("pickupDate".into(), format!("is in the past (today is {today})"));
        } else if (p - today).whole_days() > MAX_DAYS_AHEAD {
            errors.insert("pickupDate".into(), format!("is more than {MAX_DAYS_AHEAD} days ahead"));
        }
    }
    if let (Some(p), Some(r)) = (pickup, ret) {
        if r < p {
            errors.insert("returnDate".into(), "is before pickupDate".into());
        } else if (r - p).whole_days() > MAX_RENTAL_DAYS {
            errors.insert("returnDate".into(), format!("rentals last at most {MAX_RENTAL_DAYS} days"));
        }
    }
    let car_size = match obj.get("carSize") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => match CarSize::parse(s) {
            Some(c) => Some(c),
            None => {
                errors.insert("carSize".into(), format!("unknown car size `{s}`; use one of {}", CarSize::names()));
                None
            }
        },
        Some(_) => {
            errors.insert("carSize".into(), "must be a string".into());
            None
        }
    };
    let driver_age = match obj.get("driverAge") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(a @ 18..=99) => Some(a as u8),
            _ => {
                errors.insert("driverAge".into(), "must be a whole number from 18 to 99".into());
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(SearchRequest {
        location: location.unwrap_or_default(),
        pickup_date: pickup.map(|d| d.to_string()).unwrap_or_default(),
        return_date: ret.map(|d| d.to_string()).unwrap_or_default(),
        car_size,
        driver_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 22);

    #[test]
    fn a_good_request() {
        let r = validate(&json!({"location": " New York ", "pickupDate": "2026-11-27", "returnDate": "2026-11-29", "carSize": "Small"}), TODAY).unwrap();
        assert_eq!(r.location, "New York");
        assert_eq!(r.car_size, Some(CarSize::Compact));
        assert_eq!(r.days(), 2);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let e = validate(&json!({"pickupDate": "2026-13-01", "returnDate": "2026-11-20", "carSize": "tank", "driverAge": 12, "colour": "red"}), TODAY).unwrap_err();
        assert_eq!(e["location"], "is required");
        assert!(e["pickupDate"].contains("not a date"));
        assert!(e["carSize"].contains("unknown car size `tank`"));
        assert!(e["driverAge"].contains("18 to 99"));
        assert!(e["colour"].contains("unknown field"));
    }

    #[test]
    fn date_order_past_and_length() {
        let e = validate(&json!({"location": "Paris", "pickupDate": "2026-11-21", "returnDate": "2026-11-25"}), TODAY).unwrap_err();
        assert!(e["pickupDate"].contains("in the past"));
        let e = validate(&json!({"location": "Paris", "pickupDate": "2026-11-25", "returnDate": "2026-11-24"}), TODAY).unwrap_err();
        assert_eq!(e["returnDate"], "is before pickupDate");
        let e = validate(&json!({"location": "Paris", "pickupDate": "2026-11-25", "returnDate": "2027-11-24"}), TODAY).unwrap_err();
        assert!(e["returnDate"].contains("at most 90 days"));
    }

    #[test]
    fn sizes_and_upgrades() {
        assert_eq!(CarSize::Compact.upgrade(), Some(CarSize::Midsize));
        assert_eq!(CarSize::Van.upgrade(), None);
        assert_eq!(CarSize::parse("FULL-SIZE"), Some(CarSize::Fullsize));
        assert_eq!(CarSize::parse("tank"), None);
    }
}
