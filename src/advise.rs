//! Sizing arithmetic for `barge advise`: network or disks? Pure functions
//! over plain numbers; the CLI measures and prints.
//!
//! Units: sizes in bytes (decimal suffixes are powers of 1000, `KiB`… of
//! 1024), rates in bytes per second, durations in seconds.

use serde::{Deserialize, Serialize};

pub const DAY: f64 = 86_400.0;
pub const WEEK: f64 = 7.0 * DAY;

fn split_number(s: &str) -> Result<(f64, String), String> {
    let s = s.trim();
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_')).unwrap_or(s.len());
    let num: f64 = s[..end].replace('_', "").parse().map_err(|_| format!("`{s}` does not start with a number"))?;
    if !num.is_finite() || num < 0.0 {
        return Err(format!("`{s}` is not a positive number"));
    }
    Ok((num, s[end..].trim().to_ascii_lowercase()))
}

fn size_factor(unit: &str) -> Option<f64> {
    Some(match unit {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "p" | "pb" => 1e15,
        "e" | "eb" => 1e18,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        "pib" => 1024f64.powi(5),
        _ => return None,
    })
}

/// `80TB`, `1.5PiB`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (n, unit) = split_number(s)?;
    let f = size_factor(&unit).ok_or_else(|| format!("unknown size unit `{unit}` (use B, KB, MB, GB, TB, PB or KiB…PiB)"))?;
    Ok((n * f).round() as u64)
}

/// A link speed in bits per second: `1Gbps`, `100Mbit/s`, `1.25GB/s`
/// (bytes), presets `1g`/`10g`/`100g` (dedicated links), and `4x10Gbps`
/// for several links at once.
pub fn parse_bandwidth(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if let Some((k, rest)) = s.split_once(['x', 'X']).filter(|(k, _)| k.chars().all(|c| c.is_ascii_digit()) && !k.is_empty()) {
        let k: f64 = k.parse().map_err(|_| format!("bad link count in `{s}`"))?;
        return Ok(k * parse_bandwidth(rest)?);
    }
    let (n, unit) = split_number(s)?;
    let unit = unit.trim_end_matches("/s").trim_end_matches("ps").to_string();
    let bits = match unit.as_str() {
        "" | "bit" | "b" => 1.0,
        "k" | "kb" | "kbit" => 1e3,
        "m" | "mb" | "mbit" => 1e6,
        "g" | "gb" | "gbit" => 1e9,
        "t" | "tb" | "tbit" => 1e12,
        _ => 0.0,
    };
    // Byte rates are written with an upper-case B: 1.25GB/s.
    let bytes_form = s.trim_end_matches("/s").ends_with('B') && !s.to_ascii_lowercase().ends_with("bps");
    if bits == 0.0 {
        return Err(format!("unknown bandwidth unit in `{s}` (use e.g. 1Gbps, 100Mbps, 1.25GB/s, 10g, 4x10Gbps)"));
    }
    Ok(if bytes_form { n * bits * 8.0 } else { n * bits })
}

/// A change rate in bytes per second: `50GB/day`, `2TB/week`, `10MB/s`, `1GB/h`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let (amount, per) = s.rsplit_once('/').ok_or_else(|| format!("`{s}` needs a period, e.g. 50GB/day"))?;
    let secs = match per.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" => 1.0,
        "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        "d" | "day" => DAY,
        "w" | "week" => WEEK,
        "month" => 30.0 * DAY,
        p => return Err(format!("unknown period `{p}` (use s, min, h, day, week, month)")),
    };
    Ok(parse_size(amount)? as f64 / secs)
}

pub fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    for (u, f) in [("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] {
        if b >= f {
            return format!("{:.1} {u}", b / f);
        }
    }
    format!("{b} B")
}

pub fn fmt_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "never".into();
    }
    if secs >= DAY {
        format!("{:.1} days", secs / DAY)
    } else if secs >= 3600.0 {
        format!("{:.1} hours", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.0} minutes", secs / 60.0)
    } else {
        format!("{secs:.0} s")
    }
}

/// A class of shippable device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceProfile {
    pub name: String,
    pub description: String,
    /// Usable bytes per device.
    pub usable: f64,
    /// Write speed of one device, bytes/s.
    pub write: f64,
    /// Days from ordering until empty devices are on site.
    pub delivery_days: f64,
    /// Days in transit from the source site to the ingest site.
    pub ship_days: f64,
    /// Ingest speed of one device at the destination, bytes/s.
    pub ingest: f64,
    /// Only proposed for data sets at least this large (bytes).
    #[serde(default)]
    pub min_size: f64,
}

pub fn default_profiles() -> Vec<DeviceProfile> {
    let p = |name: &str, description: &str, usable: f64, write: f64, delivery: f64, ship: f64, ingest: f64, min: f64| DeviceProfile {
        name: name.into(),
        description: description.into(),
        usable,
        write,
        delivery_days: delivery,
        ship_days: ship,
        ingest,
        min_size: min,
    };
    vec![
        p("snowball", "Snowball Edge-class, 80 TB usable", 80e12, 0.5e9, 4.0, 3.0, 0.5e9, 0.0),
        p("snowball-storage", "storage-optimized, 210 TB usable", 210e12, 1.0e9, 4.0, 3.0, 1.0e9, 0.0),
        p("databox", "Data Box-class, 120 TB usable", 120e12, 0.6e9, 5.0, 3.0, 0.6e9, 0.0),
        p("truck", "truck-class, 100 PB, for more than 10 PB", 100e15, 100e9, 14.0, 7.0, 100e9, 10e15),
    ]
}

/// Everything the plan depends on.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    pub size: f64,
    /// Link speed in bits/s.
    pub bandwidth_bps: f64,
    pub utilization: f64,
    /// Bytes/s of changes at the source while the move runs.
    pub change_rate: f64,
    /// How fast the source can be read, bytes/s.
    pub source_read: f64,
    /// How fast this machine packs (hash + encrypt), bytes/s.
    pub pack_speed: f64,
    /// Devices that can be on site (attached) at once; 0 = as many as needed.
    pub devices_at_once: u32,
    /// Bytes a pack stores per source byte (compressed ÷ original, as
    /// measured on a sample; 1.0 when not measured). The devices hold, are
    /// written and ingested at this size; reading and packing see every
    /// source byte. The network plan moves the data as it is: the database
    /// protocols barge migrates over do not compress.
    pub compress_ratio: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetworkPlan {
    /// Bytes/s actually moved: bandwidth × utilization / 8.
    pub effective_rate: f64,
    pub transfer_secs: f64,
    /// Time to send the changes made during the transfer (infinite if they outrun the link).
    pub catch_up_secs: f64,
    pub total_secs: f64,
}

/// Network time = bytes × 8 / (bandwidth × utilization).
pub fn network_plan(i: &Inputs) -> NetworkPlan {
    let effective_rate = i.bandwidth_bps * i.utilization / 8.0;
    let transfer_secs = i.size * 8.0 / (i.bandwidth_bps * i.utilization);
    let catch_up_secs = catch_up(i.change_rate * transfer_secs, effective_rate, i.change_rate);
    NetworkPlan { effective_rate, transfer_secs, catch_up_secs, total_secs: transfer_secs + catch_up_secs }
}

/// Time for a link of `rate` to drain `backlog` while changes keep coming
/// at `change`: backlog / (rate − change); infinite if change ≥ rate.
pub fn catch_up(backlog: f64, rate: f64, change: f64) -> f64 {
    if backlog <= 0.0 {
        0.0
    } else if change >= rate {
        f64::INFINITY
    } else {
        backlog / (rate - change)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Wave {
    pub devices: u32,
    /// Bytes stored on this wave's devices (after compression).
    pub bytes: f64,
    pub fill_secs: f64,
    /// What bounds the fill: "source read", "pack speed" or "device write".
    pub bound: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DevicePlan {
    pub device: String,
    pub devices: u32,
    pub waves: Vec<Wave>,
    pub delivery_secs: f64,
    pub fill_secs: f64,
    /// Waits for the next wave's devices between waves.
    pub turnaround_secs: f64,
    pub ship_secs: f64,
    pub ingest_secs: f64,
    /// Changes made from the snapshot until the last ingest, in bytes.
    pub backlog: f64,
    pub catch_up_secs: f64,
    pub total_secs: f64,
}

/// Devices: order them, fill them in waves (each wave as fast as the
/// slowest of source read, pack speed and the wave's combined device
/// writes), ship, ingest, then catch up over the network on the changes
/// made since the snapshot (taken when filling starts).
pub fn device_plan(i: &Inputs, p: &DeviceProfile, net: &NetworkPlan) -> DevicePlan {
    let ratio = if i.compress_ratio > 0.0 && i.compress_ratio.is_finite() { i.compress_ratio } else { 1.0 };
    let stored = i.size * ratio;
    let devices = ((stored / p.usable).ceil() as u32).max(1);
    let at_once = if i.devices_at_once == 0 { devices } else { i.devices_at_once.min(devices) };
    let mut waves = Vec::new();
    let mut left_devices = devices;
    let mut left_bytes = stored;
    while left_devices > 0 {
        let n = left_devices.min(at_once);
        let bytes = left_bytes.min(n as f64 * p.usable);
        // Reading and packing handle the source bytes; the devices only
        // the compressed ones.
        let source = bytes / ratio;
        let times = [(source / i.source_read, "source read"), (source / i.pack_speed, "pack speed"), (bytes / (n as f64 * p.write), "device write")];
        let (fill_secs, bound) = times.into_iter().fold((0.0, "device write"), |a, b| if b.0 > a.0 { b } else { a });
        waves.push(Wave { devices: n, bytes, fill_secs, bound });
        left_devices -= n;
        left_bytes -= bytes;
    }
    let delivery_secs = p.delivery_days * DAY;
    let fill_secs: f64 = waves.iter().map(|w| w.fill_secs).sum();
    // The next wave's devices are ordered when the previous wave ships.
    let turnaround_secs = (waves.len() as f64 - 1.0) * p.delivery_days * DAY;
    let ship_secs = p.ship_days * DAY;
    let last = waves.last().expect("at least one wave");
    let ingest_secs = last.bytes / (last.devices as f64 * p.ingest);
    let since_snapshot = fill_secs + turnaround_secs + ship_secs + ingest_secs;
    let backlog = i.change_rate * since_snapshot;
    let catch_up_secs = catch_up(backlog, net.effective_rate, i.change_rate);
    DevicePlan {
        device: p.name.clone(),
        devices,
        waves,
        delivery_secs,
        fill_secs,
        turnaround_secs,
        ship_secs,
        ingest_secs,
        backlog,
        catch_up_secs,
        total_secs: delivery_secs + since_snapshot + catch_up_secs,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    pub inputs: Inputs,
    pub network: NetworkPlan,
    pub devices: DevicePlan,
    /// Plans with every other profile, for comparison.
    pub alternatives: Vec<DevicePlan>,
    /// "network" or "devices".
    pub recommendation: &'static str,
    pub reason: String,
    pub warnings: Vec<String>,
}

/// Picks the device profile (the named one, else the fastest allowed for
/// this size) and compares it with the network.
pub fn advise(i: &Inputs, profiles: &[DeviceProfile], device: Option<&str>) -> Result<Advice, String> {
    let net = network_plan(i);
    let plans: Vec<DevicePlan> = profiles.iter().map(|p| device_plan(i, p, &net)).collect();
    let chosen = match device {
        Some(name) => plans
            .iter()
            .position(|p| p.device == name)
            .ok_or_else(|| format!("unknown device `{name}`; known: {}", profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")))?,
        // The profiles meant for this size class (the truck past 10 PB),
        // then the fastest of them.
        None => {
            let floor = profiles.iter().map(|p| p.min_size).filter(|&m| m <= i.size).fold(0.0, f64::max);
            (0..plans.len())
                .filter(|&k| profiles[k].min_size == floor)
                .min_by(|&a, &b| plans[a].total_secs.total_cmp(&plans[b].total_secs))
                .ok_or("no device profile fits this size")?
        }
    };
    let dev = plans[chosen].clone();
    let mut warnings = Vec::new();
    if i.change_rate >= net.effective_rate {
        warnings.push(format!(
            "the change rate ({}/day) is at least what the link carries ({}/day): the network could never catch up, with or without devices",
            fmt_bytes((i.change_rate * DAY) as u64),
            fmt_bytes((net.effective_rate * DAY) as u64)
        ));
    }
    if i.size > 10e15 && dev.device != "truck" && profiles.iter().any(|p| p.name == "truck") {
        warnings.push("past 10 PB a truck-class device is recommended".into());
    }
    let (recommendation, reason) = if net.total_secs < WEEK {
        ("network", format!("the network takes {}, under a week", fmt_duration(net.total_secs)))
    } else if net.total_secs <= dev.total_secs {
        (
            "network",
            format!(
                "the network ({}) beats {} × {} ({}) by {}",
                fmt_duration(net.total_secs),
                dev.devices,
                dev.device,
                fmt_duration(dev.total_secs),
                margin(net.total_secs, dev.total_secs)
            ),
        )
    } else {
        (
            "devices",
            format!(
                "{} × {} ({}) beat the network ({}) by {}",
                dev.devices,
                dev.device,
                fmt_duration(dev.total_secs),
                fmt_duration(net.total_secs),
                margin(dev.total_secs, net.total_secs)
            ),
        )
    };
    let alternatives = plans.into_iter().enumerate().filter(|(k, _)| *k != chosen).map(|(_, p)| p).collect();
    Ok(Advice { inputs: i.clone(), network: net, devices: dev, alternatives, recommendation, reason, warnings })
}

fn margin(fast: f64, slow: f64) -> String {
    if !slow.is_finite() {
        return "an unbounded margin (the other never finishes)".into();
    }
    format!("{} ({:.1}× faster)", fmt_duration(slow - fast), slow / fast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(size: &str, bw: &str, util: f64) -> Inputs {
        Inputs {
            size: parse_size(size).unwrap() as f64,
            bandwidth_bps: parse_bandwidth(bw).unwrap(),
            utilization: util,
            change_rate: 0.0,
            source_read: f64::INFINITY,
            pack_speed: f64::INFINITY,
            devices_at_once: 0,
            compress_ratio: 1.0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn units() {
        assert_eq!(parse_size("80TB").unwrap(), 80_000_000_000_000);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(parse_bandwidth("1Gbps").unwrap(), 1e9);
        assert_eq!(parse_bandwidth("100Mbps").unwrap(), 1e8);
        assert_eq!(parse_bandwidth("10g").unwrap(), 1e10);
        assert_eq!(parse_bandwidth("4x10Gbps").unwrap(), 4e10);
        assert_eq!(parse_bandwidth("1.25GB/s").unwrap(), 1e10);
        assert!(close(parse_rate("50GB/day").unwrap(), 50e9 / 86_400.0));
        assert!(close(parse_rate("7TB/week").unwrap(), 1e12 / 86_400.0));
    }

    /// 100 TB × 8 = 8e14 bits; at 1 Gbps × 0.8 = 8e8 bits/s that is 1e6 s = 11.574 days.
    #[test]
    fn hundred_tb_at_one_gbps() {
        let n = network_plan(&inputs("100TB", "1Gbps", 0.8));
        assert!(close(n.transfer_secs, 1_000_000.0), "{}", n.transfer_secs);
        assert!((n.transfer_secs / DAY - 11.574).abs() < 0.001);
        assert_eq!(n.effective_rate, 1e8);
        assert_eq!(n.catch_up_secs, 0.0);
    }

    /// 1 PB at 10 Gbps, 100 % = 8e15 / 1e10 = 8e5 s = 9.26 days.
    #[test]
    fn one_pb_at_ten_gbps() {
        let n = network_plan(&inputs("1PB", "10Gbps", 1.0));
        assert!(close(n.transfer_secs, 800_000.0));
    }

    /// 80 TB on 80 TB devices: one device; fill at 0.5 GB/s = 160,000 s;
    /// + 4 days delivery + 3 days ship + ingest 160,000 s.
    #[test]
    fn one_snowball() {
        let i = inputs("80TB", "1Gbps", 0.8);
        let p = &default_profiles()[0];
        let d = device_plan(&i, p, &network_plan(&i));
        assert_eq!(d.devices, 1);
        assert!(close(d.fill_secs, 160_000.0));
        assert_eq!(d.waves[0].bound, "device write");
        assert!(close(d.total_secs, 4.0 * DAY + 160_000.0 + 3.0 * DAY + 160_000.0));
    }

    /// 500 TB on 80 TB devices = 7 devices; 3 at a time = waves of 3, 3, 1.
    /// Pack speed 1 GB/s bounds the 3-device waves (3 × 0.5 = 1.5 GB/s):
    /// 240 TB / 1e9 = 240,000 s each; the last wave holds 20 TB at 0.5 GB/s
    /// = 40,000 s. Two turnarounds of 4 days.
    #[test]
    fn waves_when_few_devices_at_once() {
        let mut i = inputs("500TB", "1Gbps", 0.8);
        i.pack_speed = 1e9;
        i.devices_at_once = 3;
        let p = &default_profiles()[0];
        let d = device_plan(&i, p, &network_plan(&i));
        assert_eq!(d.devices, 7);
        let w: Vec<_> = d.waves.iter().map(|w| (w.devices, w.bytes, w.bound)).collect();
        assert_eq!(w, vec![(3, 240e12, "pack speed"), (3, 240e12, "pack speed"), (1, 20e12, "device write")]);
        assert!(close(d.fill_secs, 520_000.0));
        assert!(close(d.turnaround_secs, 8.0 * DAY));
        assert!(close(d.ingest_secs, 40_000.0));
    }

    /// Changes of 1 GB/day on a link that moves 1e8 B/s: during a device
    /// plan of S seconds since the snapshot the backlog is S × rate, drained
    /// at (1e8 − rate).
    #[test]
    fn cdc_catch_up_and_never() {
        let mut i = inputs("80TB", "1Gbps", 0.8);
        i.change_rate = parse_rate("1GB/day").unwrap();
        let net = network_plan(&i);
        let d = device_plan(&i, &default_profiles()[0], &net);
        let since = d.fill_secs + d.ship_secs + d.ingest_secs;
        assert!(close(d.backlog, since * 1e9 / DAY));
        assert!(close(d.catch_up_secs, d.backlog / (1e8 - 1e9 / DAY)));
        // Changes faster than the link: never.
        i.change_rate = parse_rate("10TB/day").unwrap();
        let a = advise(&i, &default_profiles(), None).unwrap();
        assert!(a.network.catch_up_secs.is_infinite());
        assert!(a.warnings.iter().any(|w| w.contains("never catch up")), "{:?}", a.warnings);
    }

    /// 200 TB that packs to 40 % is 80 TB on the devices: one snowball, not
    /// three; written at 0.5 GB/s (160,000 s) unless packing 200 TB is
    /// slower: at 1 GB/s it takes 200,000 s and bounds the fill.
    #[test]
    fn compression_shrinks_what_the_devices_hold() {
        let mut i = inputs("200TB", "1Gbps", 0.8);
        let p = &default_profiles()[0];
        assert_eq!(device_plan(&i, p, &network_plan(&i)).devices, 3);
        i.compress_ratio = 0.4;
        let d = device_plan(&i, p, &network_plan(&i));
        assert_eq!(d.devices, 1);
        assert!(close(d.waves[0].bytes, 80e12));
        assert!(close(d.fill_secs, 160_000.0));
        assert_eq!(d.waves[0].bound, "device write");
        assert!(close(d.ingest_secs, 160_000.0));
        i.pack_speed = 1e9;
        let d = device_plan(&i, p, &network_plan(&i));
        assert!(close(d.fill_secs, 200_000.0));
        assert_eq!(d.waves[0].bound, "pack speed");
        // The network moves every byte as it is.
        assert!(close(network_plan(&i).transfer_secs, 2e14 * 8.0 / 8e8));
    }

    #[test]
    fn recommendations() {
        // 1 TB at 10 Gbps: well under a week.
        let a = advise(&inputs("1TB", "10Gbps", 0.8), &default_profiles(), None).unwrap();
        assert_eq!(a.recommendation, "network");
        assert!(a.reason.contains("under a week"));
        // 100 TB at 100 Mbps: 92.6 days on the wire; two 80 TB devices are faster.
        let a = advise(&inputs("100TB", "100Mbps", 1.0), &default_profiles(), Some("snowball")).unwrap();
        assert_eq!(a.recommendation, "devices");
        assert_eq!(a.devices.devices, 2);
        assert!(a.reason.contains("faster"), "{}", a.reason);
        // 20 PB: the truck is the only profile offered past 10 PB by default.
        let a = advise(&inputs("20PB", "100Gbps", 0.8), &default_profiles(), None).unwrap();
        assert_eq!(a.devices.device, "truck");
        assert!(advise(&inputs("1TB", "1Gbps", 0.8), &default_profiles(), Some("nope")).is_err());
    }
}
