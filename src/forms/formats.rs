//! Custom formats of the county's questionnaire: `cn-resident-id` and `cn-mobile`.
//!
//! Both accept what cleaning later fixes (full-width digits, a lower-case `x`, surrounding
//! spaces), so a phone is never refused for a keyboard quirk.

use time::{Date, Month, OffsetDateTime};

use crate::text::normalize;

/// GB 11643 weights of the first 17 digits (ISO 7064 MOD 11-2).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder of the weighted sum modulo 11.
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Why a value is not a resident ID number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdProblem {
    /// Not 17 digits followed by a digit or `X`.
    Shape,
    /// Digits 7–14 are not a real date, or it is in the future.
    BirthDate,
    /// The 18th character does not match the other 17.
    CheckDigit,
}

/// What a resident ID number says about its holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResidentId {
    pub birth_date: Date,
    /// The 17th digit is odd for men, even for women.
    pub male: bool,
}

/// Parses an 18-character resident ID number (tolerant of keyboard quirks).
pub fn resident_id(value: &str) -> Result<ResidentId, IdProblem> {
    let id: Vec<char> = normalize(value).to_uppercase().chars().collect();
    if id.len() != 18
        || !id[..17].iter().all(char::is_ascii_digit)
        || !(id[17].is_ascii_digit() || id[17] == 'X')
    {
        return Err(IdProblem::Shape);
    }
    let digit = |i: usize| id[i].to_digit(10).unwrap_or(0);
    let number = |from: usize, to: usize| (from..to).fold(0, |n, i| n * 10 + digit(i));
    let month = Month::try_from(number(10, 12) as u8).map_err(|_| IdProblem::BirthDate)?;
    let birth_date = Date::from_calendar_date(number(6, 10) as i32, month, number(12, 14) as u8)
        .map_err(|_| IdProblem::BirthDate)?;
    if birth_date > OffsetDateTime::now_utc().date() || birth_date.year() < 1900 {
        return Err(IdProblem::BirthDate);
    }
    let first17: String = id[..17].iter().collect();
    if check_character(&first17) != Some(id[17]) {
        return Err(IdProblem::CheckDigit);
    }
    Ok(ResidentId {
        birth_date,
        male: digit(16) % 2 == 1,
    })
}

/// The GB 11643 check character of 17 digits; `None` if they are not 17 ASCII digits.
pub fn check_character(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let digits = first17
        .chars()
        .map(|c| c.to_digit(10))
        .collect::<Option<Vec<u32>>>()?;
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    Some(CHECK[(sum % 11) as usize])
}

/// 17 digits completed with their check character: how test data and the simulator make IDs.
pub fn complete_resident_id(first17: &str) -> Option<String> {
    check_character(first17).map(|check| format!("{first17}{check}"))
}

/// The `cn-resident-id` format check.
pub fn is_resident_id(value: &str) -> bool {
    resident_id(value).is_ok()
}

/// The `cn-mobile` format check: 11 digits starting with 1.
pub fn is_mobile(value: &str) -> bool {
    let number = normalize(value);
    number.len() == 11 && number.starts_with('1') && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correct_id_number_is_read_for_birth_date_and_gender() {
        let id = resident_id("45222319830708039X").unwrap();
        assert_eq!(
            id.birth_date,
            Date::from_calendar_date(1983, Month::July, 8).unwrap()
        );
        assert!(id.male);
        assert!(!resident_id("452223198503150025").unwrap().male);
    }

    #[test]
    fn keyboard_quirks_are_tolerated() {
        assert!(is_resident_id(" 45222319830708039x "));
        assert!(is_resident_id("４５２２２３１９８３０７０８０３９Ｘ"));
        assert!(is_mobile("\u{3000}１３８７７６１２３４５"));
    }

    #[test]
    fn each_kind_of_wrong_id_number_is_told_apart() {
        assert_eq!(
            resident_id("452223198307080391"),
            Err(IdProblem::CheckDigit)
        );
        assert_eq!(resident_id("4522231983070803"), Err(IdProblem::Shape));
        assert_eq!(resident_id("45222319830708039Y"), Err(IdProblem::Shape));
        assert_eq!(
            resident_id("452223198302300391"),
            Err(IdProblem::BirthDate),
            "30 February"
        );
        assert_eq!(
            resident_id("452223209901010011"),
            Err(IdProblem::BirthDate),
            "in the future"
        );
    }

    #[test]
    fn the_check_character_completes_17_digits() {
        assert_eq!(
            complete_resident_id("45222319830708039").as_deref(),
            Some("45222319830708039X")
        );
        assert_eq!(check_character("4522231983070803"), None);
        assert_eq!(check_character("4522231983070803a"), None);
    }

    #[test]
    fn mobile_numbers_are_eleven_digits_starting_with_one() {
        assert!(is_mobile("13877612345"));
        for bad in ["23877612345", "1387761234", "138776123456", "1387761234a"] {
            assert!(!is_mobile(bad), "{bad}");
        }
    }
}
