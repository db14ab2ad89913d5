package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux architecture Go runs on).
const userHZ = 100

// CPUUsage is processor time (user + system) spent during a run, by
// component: the servers under test, PostgreSQL (every postgres process of
// the machine) and the load generator itself; Other is what the rest of
// the machine used meanwhile (other users' work: noise).
type CPUUsage struct {
	Server, Postgres, Client, Other time.Duration
}

// PerRequest divides each component's time by n requests.
func (u CPUUsage) PerRequest(n int) CPUUsage {
	if n <= 0 {
		return CPUUsage{}
	}
	d := time.Duration(n)
	return CPUUsage{Server: u.Server / d, Postgres: u.Postgres / d, Client: u.Client / d, Other: u.Other / d}
}

// System is the processor time of what is measured: servers and database.
func (u CPUUsage) System() time.Duration { return u.Server + u.Postgres }

// Total is the sum of the components.
func (u CPUUsage) Total() time.Duration { return u.Server + u.Postgres + u.Client }

// cpuMeter takes snapshots of the processor time of the servers, of
// PostgreSQL and of this process.
type cpuMeter struct {
	servers []int // pids; empty when the servers run in this process
}

// cpuSnapshot is processor time used since boot, by component.
type cpuSnapshot struct {
	server, postgres, self, busy time.Duration
}

// snapshot reads the processor time of each component now.
func (m cpuMeter) snapshot() cpuSnapshot {
	var s cpuSnapshot
	for _, pid := range m.servers {
		if t, _, err := procCPU(strconv.Itoa(pid)); err == nil {
			s.server += t
		}
	}
	s.postgres = postgresCPU()
	s.self, _, _ = procCPU("self")
	s.busy = machineBusy()
	return s
}

// since returns the usage between before and now.
func (m cpuMeter) since(before cpuSnapshot) CPUUsage {
	now := m.snapshot()
	u := CPUUsage{
		Server:   now.server - before.server,
		Postgres: max(now.postgres-before.postgres, 0),
		Client:   now.self - before.self,
	}
	if len(m.servers) == 0 { // in-process servers: this process is all of them
		u.Client = 0
	}
	u.Other = max(now.busy-before.busy-u.Server-u.Postgres-(now.self-before.self), 0)
	return u
}

// machineBusy is the processor time the whole machine spent outside idle
// and I/O wait since boot (the first line of /proc/stat).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user time
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / userHZ
}

// procCPU reads utime+stime and the command name of /proc/<pid>/stat.
func procCPU(pid string) (time.Duration, string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, "", err
	}
	return parseStat(b)
}

// parseStat reads the command name and utime+stime of a /proc/<pid>/stat
// line. The name is in parentheses and may hold spaces, so fields are
// counted from the last ')'.
func parseStat(b []byte) (time.Duration, string, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return 0, "", fmt.Errorf("malformed stat line")
	}
	name := string(b[open+1 : end])
	fields := strings.Fields(string(b[end+1:]))
	// fields[0] is the state (field 3); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, name, fmt.Errorf("short stat line")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, name, fmt.Errorf("malformed stat times")
	}
	return time.Duration(utime+stime) * time.Second / userHZ, name, nil
}

// postgresCPU sums the processor time of every process named postgres.
func postgresCPU() time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		t, name, err := procCPU(e.Name())
		if err == nil && name == "postgres" {
			total += t
		}
	}
	return total
}

// rssKiB reads VmRSS (resident memory) and VmHWM (its peak) of pid, in KiB.
func rssKiB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no VmRSS for pid %d", pid)
	}
	return rss, hwm, nil
}
