//! The search itself, behind a trait. The built-in provider stands in for the
//! slow car-rental upstream: a realistic, deterministic inventory (the same
//! search always gives the same offers).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stackctl_shared::search::{CarSize, SearchRequest};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    pub id: String,
    pub supplier: String,
    /// 1.0 to 5.0.
    pub supplier_rating: f64,
    pub car_class: CarSize,
    pub model: String,
    pub price_per_day: f64,
    pub total_price: f64,
    pub currency: String,
    /// The class this offer can be upgraded to, if the supplier offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_class: Option<CarSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_price_per_day: Option<f64>,
}

pub trait Provider: Send + Sync {
    fn search(&self, request: &SearchRequest) -> Vec<Offer>;
}

/// Deterministic inventory: suppliers, classes, models and prices derived from a
/// hash of the search.
pub struct BuiltinProvider;

const SUPPLIERS: &[(&str, f64, f64)] = &[
    // name, rating, price factor
    ("Enterprise", 4.5, 1.05),
    ("Hertz", 4.2, 1.15),
    ("Avis", 4.1, 1.10),
    ("Budget", 3.8, 0.90),
    ("Sixt", 4.4, 1.12),
    ("Europcar", 3.9, 0.98),
    ("Alamo", 4.0, 0.95),
    ("Thrifty", 3.4, 0.85),
];

fn class_info(c: CarSize) -> (f64, &'static [&'static str]) {
    match c {
        CarSize::Economy => (29.0, &["Kia Rio", "Mitsubishi Mirage", "Chevrolet Spark"]),
        CarSize::Compact => (35.0, &["Nissan Versa", "Toyota Corolla", "Volkswagen Golf"]),
        CarSize::Midsize => (42.0, &["Toyota Camry", "Hyundai Elantra", "Mazda 6"]),
        CarSize::Fullsize => (51.0, &["Chevrolet Malibu", "Nissan Altima", "Ford Fusion"]),
        CarSize::Suv => (64.0, &["Toyota RAV4", "Ford Escape", "Jeep Compass"]),
        CarSize::Luxury => (98.0, &["BMW 5 Series", "Mercedes E-Class", "Cadillac CT5"]),
        CarSize::Van => (79.0, &["Chrysler Pacifica", "Toyota Sienna", "Honda Odyssey"]),
    }
}

/// A small deterministic generator (splitmix64) seeded from the search.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Provider for BuiltinProvider {
    fn search(&self, r: &SearchRequest) -> Vec<Offer> {
        let digest = Sha256::digest(format!("{}|{}|{}", r.location.to_lowercase(), r.pickup_date, r.return_date));
        let mut rng = Rng(u64::from_le_bytes(digest[..8].try_into().unwrap_or_default()));
        let days = r.days() as f64;
        let mut offers = Vec::new();
        for (supplier, rating, factor) in SUPPLIERS {
            for class in CarSize::ALL {
                // Each supplier stocks about two thirds of the classes at a given place.
                if rng.unit() < 0.35 {
                    continue;
                }
                let (base, models) = class_info(class);
                let model = models[(rng.next() % models.len() as u64) as usize];
                let per_day = cents(base * factor * (0.9 + 0.3 * rng.unit()));
                let upgrade = class.upgrade().filter(|_| rng.unit() < 0.5);
                let upgrade_price = upgrade.map(|u| cents((class_info(u).0 - base) * 0.6 * factor));
                offers.push(Offer {
                    id: format!("{}-{}-{}", &supplier[..3].to_ascii_uppercase(), class.name(), offers.len() + 1),
                    supplier: (*supplier).to_owned(),
                    supplier_rating: *rating,
                    car_class: class,
                    model: model.to_owned(),
                    price_per_day: per_day,
                    total_price: cents(per_day * days),
                    currency: "USD".into(),
                    upgrade_class: upgrade,
                    upgrade_price_per_day: upgrade_price,
                });
            }
        }
        offers.sort_by(|a, b| a.total_price.total_cmp(&b.total_price).then_with(|| a.id.cmp(&b.id)));
        offers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(location: &str) -> SearchRequest {
        SearchRequest {
            location: location.into(),
            pickup_date: "2026-12-04".into(),
            return_date: "2026-12-07".into(),
            car_size: None,
            driver_age: None,
        }
    }

    #[test]
    fn the_same_search_gives_the_same_offers() {
        let a = BuiltinProvider.search(&request("New York"));
        assert_eq!(a, BuiltinProvider.search(&request("new york")));
        assert_ne!(a, BuiltinProvider.search(&request("Paris")));
    }

    #[test]
    fn offers_are_realistic() {
        let offers = BuiltinProvider.search(&request("New York"));
        assert!(offers.len() >= 20, "{}", offers.len());
        for o in &offers {
            assert!((1.0..=5.0).contains(&o.supplier_rating));
            assert!((o.total_price - o.price_per_day * 3.0).abs() < 0.02, "{o:?}");
            assert_eq!(o.upgrade_class.is_some(), o.upgrade_price_per_day.is_some());
            if let Some(u) = o.upgrade_class {
                assert!(u > o.car_class);
            }
        }
        assert!(offers.windows(2).all(|w| w[0].total_price <= w[1].total_price), "sorted by price");
        let suppliers: std::collections::BTreeSet<_> = offers.iter().map(|o| o.supplier.as_str()).collect();
        assert!(suppliers.len() >= 6);
    }
}
