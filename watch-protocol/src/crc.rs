//! CRC-16/IBM-3740 (also called CRC-16/CCITT-FALSE).

/// CRC-16/IBM-3740: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR.
/// The check value over the ASCII bytes `123456789` is 0x29B1.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}
