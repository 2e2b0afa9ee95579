// Package facts reads what an agent tells the grid about its device: the
// architecture and OS, logical CPUs, memory, load, battery and how long
// since a person last used the device, so that work is placed where it
// fits and away from devices someone is using or that run on battery.
// Read is cheap enough to call every few seconds; Speed runs a short
// benchmark once, at agent start.
//
// Nothing is made up: a fact the device cannot report stays zero and says
// so (LoadKnown, IdleKnown, a nil Battery, MemTotal 0). Read returns every
// fact it could read together with an error naming the ones it could not,
// so an agent can log the error and still publish the rest.
//
// Where each fact comes from:
//
//   - Cores is runtime.NumCPU everywhere: the CPUs this process may run on
//     (its affinity mask on Linux), which is what work placed here gets.
//   - Memory: on Linux /proc/meminfo, MemFree being MemAvailable (MemFree
//     on kernels before 3.14, which lack it: an underestimate, never an
//     overestimate). On macOS and Windows gopsutil: host_statistics'
//     free+inactive pages on macOS, GlobalMemoryStatusEx's ullAvailPhys on
//     Windows. Limits of a container's cgroup are not applied.
//   - Load1: /proc/loadavg on Linux, sysctl vm.loadavg on macOS and the
//     BSDs. Windows has no load average (gopsutil's imitation samples in a
//     background goroutine and reads 0 for its first minutes), so there it
//     is unknown.
//   - Battery: on Linux /sys/class/power_supply. Supplies of type Battery
//     are the device's batteries unless their scope is "Device" (a mouse's
//     or keyboard's); with several, Percent is their mean. OnAC is true when
//     any other supply (Mains, USB, …) reports online 1; a device exposing
//     no such supply is taken to be on AC when a battery says Charging,
//     Full or Not charging. A battery whose charge cannot be read (a
//     malformed or out-of-range capacity file) is skipped and named in
//     Read's error; if no battery is left, Battery is nil. On Windows,
//     GetSystemPowerStatus. On macOS nil: the battery is reachable only
//     through IOKit, which needs cgo.
//   - Idle: on Linux, the time since the most recent input on a terminal:
//     the access time of /dev/pts/N and /dev/ttyN, which the kernel's tty
//     layer sets when it reads input (in steps of 8 seconds, so idle times
//     are that coarse); output sets only the modification time. A terminal
//     whose access time is not after its change time has had no input
//     since it was created or handed to a user (login chowns it), so it is
//     ignored; with no terminal left IdleKnown is false, as on a headless
//     device nobody has typed into since boot. The rule's limits: graphical
//     sessions are not seen (someone using only a desktop looks idle), and
//     input a program feeds into a pseudo-terminal (expect, `docker -t`)
//     looks like a person. Elsewhere IdleKnown is false.
//
// Speed times three single-threaded kernels (sha256 over 16 KiB, an
// integer mix over a small table, a chain of float multiplies, divisions
// and square roots), each in two short windows keeping the faster, so that
// another program's burst lowers the score less; the score is the
// geometric mean of the three rates, scaled so that a 2020s x86 server core
// scores about 1000, and no single instruction set extension (SHA-NI,
// say) dominates it.
package facts
