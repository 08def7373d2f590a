//! Packs: bytes written per device, and each device's free space (read
//! when Prometheus scrapes).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

#[derive(Debug, Default)]
pub struct Pack {
    pub devices: RwLock<Vec<Device>>,
}

#[derive(Debug)]
pub struct Device {
    pub number: u32,
    pub dir: PathBuf,
    pub written: AtomicU64,
}

impl Pack {
    pub fn device(&self, number: u32, dir: &std::path::Path) {
        let mut d = self.devices.write().unwrap();
        if !d.iter().any(|d| d.number == number) {
            d.push(Device { number, dir: dir.to_path_buf(), written: AtomicU64::new(0) });
        }
    }

    /// Once per sealed segment (megabytes), not per row.
    pub fn written(&self, number: u32, bytes: u64) {
        if let Some(d) = self.devices.read().unwrap().iter().find(|d| d.number == number) {
            d.written.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}
