package facts

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

var procGetSystemPowerStatus = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetSystemPowerStatus")

// systemPowerStatus is Win32's SYSTEM_POWER_STATUS.
type systemPowerStatus struct {
	ACLineStatus        byte // 0 offline, 1 online, 255 unknown
	BatteryFlag         byte // bits: 8 charging, 128 no system battery; 255 unknown
	BatteryLifePercent  byte // 0..100, 255 unknown
	SystemStatusFlag    byte
	BatteryLifeTime     uint32
	BatteryFullLifeTime uint32
}

func osBattery() (*Battery, error) {
	var s systemPowerStatus
	if r, _, err := procGetSystemPowerStatus.Call(uintptr(unsafe.Pointer(&s))); r == 0 {
		return nil, fmt.Errorf("battery: GetSystemPowerStatus: %w", err)
	}
	if s.BatteryFlag == 255 || s.BatteryFlag&128 != 0 || s.BatteryLifePercent > 100 {
		return nil, nil
	}
	onAC := s.ACLineStatus == 1
	return &Battery{
		Percent:  float64(s.BatteryLifePercent),
		Charging: s.BatteryFlag&8 != 0 || (onAC && s.BatteryLifePercent == 100),
		OnAC:     onAC,
	}, nil
}
