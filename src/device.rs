//! Owns turning a User-Agent header into `DeviceInfo` (platform, device type,
//! browser), using the maintained `woothee` parser.
//!
//! Woothee's categories map onto the contract's device types; two documented
//! conventions refine them: iPads are tablets, and Android without "Mobile"
//! in the User-Agent is a tablet (Google's guidance for Android browsers).

use crate::model::DeviceInfo;

const UNKNOWN: &str = "UNKNOWN";

/// Parses a User-Agent; an absent or unrecognised one gives `unknown`.
pub fn parse_user_agent(user_agent: Option<&str>) -> DeviceInfo {
    let Some(agent) = user_agent.filter(|a| !a.trim().is_empty()) else {
        return unknown_device();
    };
    let Some(result) = woothee::parser::Parser::new().parse(agent) else {
        return unknown_device();
    };
    DeviceInfo {
        platform: known(result.os),
        device_type: Some(device_type(result.category, result.os, agent).to_string()),
        browser: known(result.name),
    }
}

fn unknown_device() -> DeviceInfo {
    DeviceInfo {
        platform: None,
        device_type: Some("unknown".to_string()),
        browser: None,
    }
}

fn known(value: &str) -> Option<String> {
    (!value.is_empty() && value != UNKNOWN).then(|| value.to_string())
}

fn device_type(category: &str, os: &str, agent: &str) -> &'static str {
    if os == "iPad" || (os == "Android" && !agent.contains("Mobile")) {
        return "tablet";
    }
    match category {
        "pc" => "desktop",
        "smartphone" | "mobilephone" => "mobile",
        "crawler" => "bot",
        _ => "unknown",
    }
}

/// The device types the contract allows.
pub const DEVICE_TYPES: [&str; 5] = ["desktop", "mobile", "tablet", "bot", "unknown"];

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(agent: &str) -> String {
        parse_user_agent(Some(agent)).device_type.unwrap()
    }

    #[test]
    fn desktop_chrome_is_a_desktop() {
        let info = parse_user_agent(Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        ));
        assert_eq!(info.device_type.as_deref(), Some("desktop"));
        assert_eq!(info.browser.as_deref(), Some("Chrome"));
        assert!(info.platform.unwrap().starts_with("Windows"));
    }

    #[test]
    fn phones_tablets_and_bots_are_told_apart() {
        assert_eq!(
            kind(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
            ),
            "mobile"
        );
        assert_eq!(
            kind(
                "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
            ),
            "tablet"
        );
        assert_eq!(
            kind(
                "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
            ),
            "tablet"
        );
        assert_eq!(
            kind(
                "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
            ),
            "mobile"
        );
        assert_eq!(
            kind("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
            "bot"
        );
    }

    #[test]
    fn missing_or_odd_agents_are_unknown() {
        assert_eq!(kind("curl/8.0"), "unknown");
        assert_eq!(
            parse_user_agent(None).device_type.as_deref(),
            Some("unknown")
        );
    }
}
