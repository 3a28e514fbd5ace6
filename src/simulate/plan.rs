//! What the simulated county submits, generated deterministically from a seed, and the truth the
//! cleaned data must give back.
//!
//! The population follows Tiandong's reported figures (domain.md): 27,211 registered poor
//! labourers, 8,033 in stable work, 7,367 in flexible work, 435 self-employed, the rest not
//! employed; 337 public-welfare posts at 300 yuan; 533 workshop workers. `scale` shrinks every
//! count in proportion. The mess real field work makes is added on purpose and counted.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use crate::forms::formats::complete_resident_id;

/// The ten townships of Tiandong county.
pub const TOWNSHIPS: [&str; 10] = [
    "平马镇",
    "祥周镇",
    "林逢镇",
    "思林镇",
    "印茶镇",
    "江城镇",
    "朔良镇",
    "义圩镇",
    "那拔镇",
    "作登瑶族乡",
];
/// Login names of the field workers, one per township (same order).
pub const WORKERS: [&str; 10] = [
    "fw-pingma",
    "fw-xiangzhou",
    "fw-linfeng",
    "fw-silin",
    "fw-yincha",
    "fw-jiangcheng",
    "fw-shuoliang",
    "fw-yixu",
    "fw-naba",
    "fw-zuodeng",
];
const COURSES: [&str; 8] = [
    "electrician",
    "welding",
    "auto_repair",
    "chinese_cooking",
    "nursery_care",
    "infant_care",
    "entrepreneurship",
    "cloud_customer_service",
];
const SURNAMES: [&str; 10] = ["黄", "韦", "梁", "陆", "农", "李", "王", "赵", "罗", "莫"];
const GIVEN: [&str; 10] = [
    "秀英", "志强", "桂芳", "建华", "丽", "明", "海燕", "国庆", "春梅", "文",
];

/// One upload a phone makes.
#[derive(Clone, Debug)]
pub struct Upload {
    /// Index into `TOWNSHIPS` / `WORKERS`: whose phone sends it.
    pub township: usize,
    /// The envelope, as JSON text (retries send these very bytes again).
    pub body: String,
    /// Sent inside an offline-queue batch rather than alone.
    pub batched: bool,
}

/// What the cleaned data must show, and how much mess went in.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Truth {
    pub households: u64,
    pub labourers: u64,
    pub stable: u64,
    pub flexible: u64,
    pub self_employed: u64,
    pub unemployed: u64,
    pub public_welfare_posts: u64,
    pub workshop_workers: u64,
    /// Households visited twice: the earlier visit must be dropped.
    pub revisits: u64,
    /// Uploads sent twice with the same id and content: answered as replays.
    pub retries: u64,
    /// Values typed with full-width digits, a lower-case x or stray spaces: each normalised.
    pub keyboard_quirks: u64,
    /// Phones whose clock was wrong: flagged.
    pub wrong_clocks: u64,
    /// Training submissions: left out.
    pub tests: u64,
}

/// The whole simulated survey.
pub struct Plan {
    pub uploads: Vec<Upload>,
    pub truth: Truth,
}

fn scaled(n: u64, scale: f64) -> u64 {
    (n as f64 * scale).round() as u64
}

/// Generates the county for `seed` at `scale` (1.0 = all 27,211 labourers).
pub fn generate(seed: u64, scale: f64) -> Plan {
    let mut rng = StdRng::seed_from_u64(seed);
    let labourers = scaled(27_211, scale);
    let (stable, flexible, self_employed) = (
        scaled(8_033, scale),
        scaled(7_367, scale),
        scaled(435, scale),
    );
    let mut statuses: Vec<&str> = std::iter::repeat_n("stable", stable as usize)
        .chain(std::iter::repeat_n("flexible", flexible as usize))
        .chain(std::iter::repeat_n("self_employed", self_employed as usize))
        .chain(std::iter::repeat_n(
            "unemployed",
            (labourers - stable - flexible - self_employed) as usize,
        ))
        .collect();
    statuses.shuffle(&mut rng);
    // Public-welfare posts and workshop jobs go to labourers in stable or flexible work.
    let mut employed: Vec<usize> = (0..statuses.len())
        .filter(|&i| matches!(statuses[i], "stable" | "flexible"))
        .collect();
    employed.shuffle(&mut rng);
    let posts = scaled(337, scale) as usize;
    let workshops = scaled(533, scale) as usize;
    let mut jobs = vec![""; statuses.len()];
    for (n, &i) in employed.iter().take(posts + workshops).enumerate() {
        jobs[i] = if n < posts {
            "public_welfare_post"
        } else {
            "workshop"
        };
    }
    let mut truth = Truth {
        labourers,
        stable,
        flexible,
        self_employed,
        unemployed: labourers - stable - flexible - self_employed,
        public_welfare_posts: posts as u64,
        workshop_workers: workshops as u64,
        ..Truth::default()
    };
    let mut people = People::default();
    let mut uploads = Vec::new();
    let now = time::OffsetDateTime::now_utc();
    let mut next = 0;
    while next < statuses.len() {
        let size = rng.gen_range(1..=4).min(statuses.len() - next);
        let township = rng.gen_range(0..TOWNSHIPS.len());
        let number = truth.households;
        truth.households += 1;
        let members: Vec<Value> = (next..next + size)
            .map(|i| people.labourer(&mut rng, statuses[i], jobs[i]))
            .collect();
        next += size;
        let mut data = household(&mut rng, number, township, members);
        // Keyboard quirks in about 3% of households, each a value cleaning must fix.
        if rng.gen_bool(0.03) {
            truth.keyboard_quirks += quirk(&mut rng, &mut data);
        }
        let completed = now + time::Duration::seconds(number as i64 % 3600);
        let mut completed_at = crate::clock::format_rfc3339(completed);
        if rng.gen_bool(0.03) {
            // A re-visit: an earlier visit of the same household, completed an hour before.
            truth.revisits += 1;
            let earlier = crate::clock::format_rfc3339(completed - time::Duration::hours(1));
            uploads.push(upload(&mut rng, township, &data, &earlier, false));
        } else if rng.gen_bool(0.005) {
            truth.wrong_clocks += 1;
            completed_at = "1970-01-01T08:00:00+08:00".into();
        }
        let this = upload(&mut rng, township, &data, &completed_at, false);
        if rng.gen_bool(0.02) {
            truth.retries += 1;
            uploads.push(this.clone());
        }
        uploads.push(this);
    }
    for n in 0..scaled(50, scale).max(1) {
        truth.tests += 1;
        let township = n as usize % TOWNSHIPS.len();
        let members = vec![people.labourer(&mut rng, "unemployed", "")];
        let data = household(&mut rng, 9_000_000 + n, township, members);
        let mut test = upload(
            &mut rng,
            township,
            &data,
            &crate::clock::format_rfc3339(now),
            true,
        );
        let mut envelope: Value = serde_json::from_str(&test.body).unwrap_or_default();
        envelope["meta"]["test"] = json!(true);
        test.body = envelope.to_string();
        uploads.push(test);
    }
    // Phones upload in their own order; which visit wins is decided by completion time, not arrival.
    uploads.shuffle(&mut rng);
    Plan { uploads, truth }
}

fn upload(
    rng: &mut StdRng,
    township: usize,
    data: &Value,
    completed_at: &str,
    test: bool,
) -> Upload {
    let id = uuid::Builder::from_random_bytes(rng.r#gen()).into_uuid();
    let envelope = json!({
        "id": id.to_string(),
        "form_version": "1",
        "data": data,
        "meta": {"device_id": format!("phone-{township}"), "app_version": "1.0.0", "completed_at": completed_at}
    });
    Upload {
        township,
        body: envelope.to_string(),
        batched: !test && rng.gen_bool(0.3),
    }
}

fn household(rng: &mut StdRng, number: u64, township: usize, members: Vec<Value>) -> Value {
    let relocated = rng.gen_bool(0.15);
    let mut data = json!({
        "household_id": format!("451022{number:08}"),
        "township": TOWNSHIPS[township],
        "village": format!("{}村", ["定阳", "那坡", "百谷", "六联", "塘宝"][rng.gen_range(0..5)]),
        "relocated": relocated,
        "members": members,
        "consent": true
    });
    if relocated {
        data["settlement"] = json!(if rng.gen_bool(0.5) {
            "江南安置小区"
        } else {
            "县城安置点"
        });
    }
    data
}

/// Makes one value look typed on a Chinese keyboard; returns how many values cleaning will change.
fn quirk(rng: &mut StdRng, data: &mut Value) -> u64 {
    match rng.gen_range(0..3) {
        0 => {
            let full: String = data["household_id"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .map(full_width)
                .collect();
            data["household_id"] = json!(full);
        }
        1 => {
            let village = data["village"].as_str().unwrap_or_default().to_owned();
            data["village"] = json!(format!("\u{3000}{village} "));
        }
        _ => {
            let id = data["members"][0]["id_number"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            data["members"][0]["id_number"] = json!(format!(
                " {}",
                id.chars().map(full_width).collect::<String>()
            ));
        }
    }
    1
}

fn full_width(c: char) -> char {
    match c {
        '0'..='9' | 'A'..='Z' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
        other => other,
    }
}

/// Makes labourers with unique, valid ID numbers.
#[derive(Default)]
struct People {
    issued: std::collections::HashSet<String>,
}

impl People {
    fn labourer(&mut self, rng: &mut StdRng, status: &str, job: &str) -> Value {
        let male = rng.gen_bool(0.5);
        let (id, birth) = loop {
            let birth = time::Date::from_calendar_date(1961, time::Month::January, 1)
                .unwrap_or(time::Date::MIN)
                + time::Duration::days(rng.gen_range(0..16_000));
            let serial = rng.gen_range(0..500) * 2 + u32::from(male);
            let first17 = format!(
                "451022{:04}{:02}{:02}{serial:03}",
                birth.year(),
                birth.month() as u8,
                birth.day()
            );
            let id = complete_resident_id(&first17).unwrap_or_default();
            if self.issued.insert(id.clone()) {
                break (id, birth);
            }
        };
        let education = [
            "none",
            "primary",
            "junior_secondary",
            "senior_secondary",
            "vocational",
        ][rng.gen_range(0..5)];
        let capacity = if status == "unemployed" && rng.gen_bool(0.3) {
            "partial"
        } else {
            "full"
        };
        let months = if status == "unemployed" {
            0
        } else {
            rng.gen_range(3..=12)
        };
        let received = if rng.gen_bool(0.3) {
            json!([COURSES[rng.gen_range(0..COURSES.len())]])
        } else {
            json!([])
        };
        let wanted = if rng.gen_bool(0.4) {
            json!([COURSES[rng.gen_range(0..COURSES.len())]])
        } else {
            json!([])
        };
        let name = format!(
            "{}{}",
            SURNAMES[rng.gen_range(0..10)],
            GIVEN[rng.gen_range(0..10)]
        );
        let mut person = json!({
            "name": name,
            "id_number": id,
            "gender": if male { "male" } else { "female" },
            "birth_date": format!("{:04}-{:02}-{:02}", birth.year(), birth.month() as u8, birth.day()),
            "education": education,
            "labour_capacity": capacity,
            "employment_status": status,
            "months_worked": months,
            "trainings_received": received,
            "trainings_wanted": wanted,
            "support_received": []
        });
        if rng.gen_bool(0.6) {
            person["phone"] = json!(format!(
                "1{}",
                rng.gen_range(3_000_000_000u64..9_999_999_999)
            ));
        }
        if status == "unemployed" {
            let reasons = [
                "no_skills",
                "caring_for_family",
                "illness_or_disability",
                "no_suitable_job",
                "too_old",
            ];
            person["unemployed_reason"] = json!(reasons[rng.gen_range(0..5)]);
            person["willing_to_work"] = json!(rng.gen_bool(0.6));
            return person;
        }
        let (job_type, location, income) = match (job, status) {
            ("public_welfare_post", _) => ("public_welfare_post", "township", 300),
            ("workshop", _) => ("workshop", "county", 2000),
            (_, "self_employed") => ("own_business", "county", rng.gen_range(1500..5000)),
            _ => (
                ["enterprise", "agriculture", "other"][rng.gen_range(0..3)],
                [
                    "township",
                    "county",
                    "guangxi",
                    "guangdong",
                    "other_province",
                ][rng.gen_range(0..5)],
                rng.gen_range(1200..6000),
            ),
        };
        person["job_type"] = json!(job_type);
        person["work_location"] = json!(location);
        person["monthly_income"] = json!(income);
        person
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_county() {
        let (a, b) = (generate(7, 0.01), generate(7, 0.01));
        let bodies = |p: &Plan| p.uploads.iter().map(|u| u.body.clone()).collect::<Vec<_>>();
        assert_eq!(bodies(&a).len(), bodies(&b).len());
        // Completion times follow the clock; everything else is fixed by the seed.
        let ids = |p: &Plan| {
            p.uploads
                .iter()
                .map(|u| u.body[..50].to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b));
    }

    #[test]
    fn the_full_county_has_the_reported_counts() {
        let truth = generate(1, 1.0).truth;
        assert_eq!(
            (
                truth.labourers,
                truth.stable,
                truth.flexible,
                truth.self_employed
            ),
            (27_211, 8_033, 7_367, 435)
        );
        assert_eq!(truth.unemployed, 27_211 - 8_033 - 7_367 - 435);
        assert_eq!(
            (
                truth.public_welfare_posts,
                truth.workshop_workers,
                truth.tests
            ),
            (337, 533, 50)
        );
    }

    #[test]
    fn generated_id_numbers_are_valid() {
        let plan = generate(3, 0.005);
        for upload in &plan.uploads {
            let envelope: Value = serde_json::from_str(&upload.body).unwrap();
            for member in envelope["data"]["members"].as_array().unwrap() {
                assert!(crate::forms::formats::is_resident_id(
                    member["id_number"].as_str().unwrap()
                ));
            }
        }
    }
}
