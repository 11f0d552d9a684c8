//! Which CPUs the server's threads run on.
//!
//! The writer thread is the server's ceiling. Sharing CPUs with the threads that read and
//! refuse requests, it lost a tenth of its time under overload waiting for a CPU each time it
//! woke (after a disk flush, when a write arrived): the other thread's time slice ran to its
//! end first, whatever their priorities. So on a machine with two CPUs or more the writer gets
//! one to itself, and every other thread of the process runs on the rest: `serve --writer-cpu`
//! `auto` (the last CPU the process may use), `off`, or a CPU's number.
//!
//! [`plan`] is pure; [`allowed`] and [`pin_current_thread`] are the system calls (Linux
//! `sched_getaffinity` / `sched_setaffinity`, through rustix). A thread made later inherits
//! the CPUs of the thread that made it, so pinning the main thread before any other starts
//! covers every thread but the writer, which pins itself as it starts.

use std::fmt;
use std::str::FromStr;

/// Where the writer thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterCpu {
    /// The last CPU the process may use, when it may use two or more; else shared.
    Auto,
    /// Shared with every other thread.
    Off,
    /// This CPU, which the process must be allowed to use, with at least one other.
    Cpu(usize),
}

impl FromStr for WriterCpu {
    type Err = String;

    fn from_str(text: &str) -> Result<WriterCpu, String> {
        match text.trim() {
            "auto" => Ok(WriterCpu::Auto),
            "off" => Ok(WriterCpu::Off),
            number => number.parse().map(WriterCpu::Cpu).map_err(|_| {
                format!(
                    "'{number}'은(는) CPU 번호가 아닙니다. auto, off 또는 숫자를 쓰세요 / \
                     '{number}' is not a CPU: use auto, off or a CPU's number"
                )
            }),
        }
    }
}

impl fmt::Display for WriterCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriterCpu::Auto => f.write_str("auto"),
            WriterCpu::Off => f.write_str("off"),
            WriterCpu::Cpu(cpu) => write!(f, "{cpu}"),
        }
    }
}

/// The CPUs of the writer and of every other thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The writer's CPU.
    pub writer: usize,
    /// Every other thread's CPUs (never empty, never the writer's).
    pub others: Vec<usize>,
}

/// Splits `allowed` (the CPUs the process may use) as `choice` says; `None` keeps every thread
/// on every CPU. An explicit CPU that cannot be given is an error saying why.
pub fn plan(choice: WriterCpu, allowed: &[usize]) -> Result<Option<Split>, String> {
    let split = |writer: usize| Split {
        writer,
        others: allowed.iter().copied().filter(|&c| c != writer).collect(),
    };
    match choice {
        WriterCpu::Off => Ok(None),
        WriterCpu::Auto => Ok(match allowed {
            [_, .., last] => Some(split(*last)),
            _ => None,
        }),
        WriterCpu::Cpu(cpu) if !allowed.contains(&cpu) => Err(format!(
            "CPU {cpu}은(는) 이 프로세스가 쓸 수 없습니다 (쓸 수 있는 CPU: {}) / CPU {cpu} is not \
             one this process may use (it may use {})",
            list(allowed),
            list(allowed)
        )),
        WriterCpu::Cpu(cpu) if allowed.len() < 2 => Err(format!(
            "CPU가 {cpu}번 하나뿐이라 나머지 스레드가 쓸 CPU가 없습니다. --writer-cpu off를 \
             쓰세요 / CPU {cpu} is the only one this process may use, which would leave none for \
             the other threads; use --writer-cpu off"
        )),
        WriterCpu::Cpu(cpu) => Ok(Some(split(cpu))),
    }
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The CPUs the calling thread may run on, in order.
pub fn allowed() -> std::io::Result<Vec<usize>> {
    let set = rustix::thread::sched_getaffinity(None)?;
    Ok((0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&cpu| set.is_set(cpu))
        .collect())
}

/// Keeps the calling thread (and the threads it makes from now on) on `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu);
    }
    Ok(rustix::thread::sched_setaffinity(None, &set)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_gives_the_writer_the_last_cpu_when_there_are_two_or_more() {
        assert_eq!(
            plan(WriterCpu::Auto, &[0, 1]),
            Ok(Some(Split {
                writer: 1,
                others: vec![0]
            }))
        );
        assert_eq!(
            plan(WriterCpu::Auto, &[2, 3, 5]),
            Ok(Some(Split {
                writer: 5,
                others: vec![2, 3]
            }))
        );
        assert_eq!(plan(WriterCpu::Auto, &[0]), Ok(None), "one CPU is shared");
        assert_eq!(plan(WriterCpu::Off, &[0, 1, 2, 3]), Ok(None));
    }

    #[test]
    fn a_cpu_named_must_be_allowed_and_leave_one_for_the_rest() {
        assert_eq!(
            plan(WriterCpu::Cpu(0), &[0, 1, 2]),
            Ok(Some(Split {
                writer: 0,
                others: vec![1, 2]
            }))
        );
        let not_allowed = plan(WriterCpu::Cpu(7), &[0, 1]).unwrap_err();
        assert!(not_allowed.contains("may use 0,1"), "{not_allowed}");
        let alone = plan(WriterCpu::Cpu(0), &[0]).unwrap_err();
        assert!(alone.contains("--writer-cpu off"), "{alone}");
    }

    #[test]
    fn the_option_reads_auto_off_or_a_number() {
        assert_eq!("auto".parse(), Ok(WriterCpu::Auto));
        assert_eq!("off".parse(), Ok(WriterCpu::Off));
        assert_eq!(" 3".parse(), Ok(WriterCpu::Cpu(3)));
        let bad = "last".parse::<WriterCpu>().unwrap_err();
        assert!(bad.contains("auto, off or a CPU's number"), "{bad}");
        assert_eq!(WriterCpu::Cpu(3).to_string(), "3");
    }
}
