package main

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ternhq/tern/internal/image"
	"github.com/ternhq/tern/internal/process"
	"github.com/ternhq/tern/internal/wasi"
)

func newInspectCommand() *cobra.Command {
	var output, data string
	cmd := &cobra.Command{
		Use:   "inspect [-o text|json] IMAGE",
		Short: "Show what a process image holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: want text or json", output)
			}
			return inspectImage(cmd.OutOrStdout(), args[0], data, output == "json")
		},
	}
	cmd.Flags().StringVar(&data, "data", defaultDataDir(), "the data directory ($TERN_DATA), which says whether the image's signer is trusted here")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// imageReport is what inspect prints; its JSON form is for scripts.
type imageReport struct {
	File         string         `json:"file"`
	FileSize     int            `json:"file_size"`
	Version      int            `json:"format_version"`
	Kind         string         `json:"kind"`
	Guest        string         `json:"guest"`
	Created      time.Time      `json:"created"`
	Producer     string         `json:"producer"`
	SignedBy     string         `json:"signed_by"` // "" when unsigned
	Trusted      bool           `json:"trusted"`   // whether tern resume would accept the signer here
	Distrust     string         `json:"distrust,omitempty"`
	ModuleSHA256 string         `json:"module_sha256"`
	ModuleSize   int            `json:"module_size"` // 0: not embedded
	Globals      []globalView   `json:"globals"`
	MemoryPages  int            `json:"memory_pages"`
	ZeroPages    int            `json:"zero_pages"`
	StoredBytes  int            `json:"memory_stored_bytes"`
	Args         []string       `json:"args"`
	Env          []string       `json:"env"`
	Preopens     []wasi.Preopen `json:"preopens"`
	FDs          []fdView       `json:"fds"`
	MonotonicNS  uint64         `json:"monotonic_ns"`
	StdinRead    uint64         `json:"stdin_bytes_read"`
	SeededRandom bool           `json:"seeded_random"`
}

type globalView struct {
	Index uint32 `json:"index"`
	Type  string `json:"type"`
	Value uint64 `json:"value"`
}

type fdView struct {
	FD     int    `json:"fd"`
	Kind   string `json:"kind"`
	Path   string `json:"path,omitempty"`
	Offset int64  `json:"offset,omitempty"`
}

func inspectImage(w io.Writer, path, data string, asJSON bool) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	info, err := image.ReadInfo(fh)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var st wasi.State
	if err := st.UnmarshalBinary(info.WASI); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rep := imageReport{
		File: path, FileSize: info.FileSize, Version: info.Version, Kind: info.Kind.String(),
		Guest: process.DescribeGuest(info.Kind, info.Guest), Created: info.Created, Producer: info.Producer,
		ModuleSHA256: hex.EncodeToString(info.ModuleHash[:]), ModuleSize: info.ModuleSize,
		MemoryPages: info.MemoryPages, ZeroPages: info.ZeroPages, StoredBytes: info.StoredBytes,
		Args: st.Args, Env: st.Env, Preopens: st.Preopens, MonotonicNS: st.Monotonic, StdinRead: st.StdinRead,
		SeededRandom: st.RNG != nil,
	}
	if info.Signer != nil {
		rep.SignedBy = "(unreadable certificate)"
		if c, err := x509.ParseCertificate(info.Signer); err == nil {
			rep.SignedBy = c.Subject.CommonName
		}
	}
	if err := checkSigner(info.Signer, info.Created, data); err != nil {
		rep.Distrust = err.Error()
	} else {
		rep.Trusted = true
	}
	for _, g := range info.Globals {
		rep.Globals = append(rep.Globals, globalView{g.Index, g.Type.String(), g.Bits})
	}
	for fd, f := range st.FDs {
		if f.Kind == 0 {
			continue
		}
		v := fdView{FD: fd, Kind: f.Kind.String(), Offset: f.Offset}
		if f.Preopen >= 0 && f.Preopen < len(st.Preopens) {
			v.Path = strings.TrimSuffix(st.Preopens[f.Preopen].GuestPath, "/") + "/" + f.Path
			if f.IsPreopen {
				v.Path = st.Preopens[f.Preopen].GuestPath
			}
		}
		rep.FDs = append(rep.FDs, v)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "image      %s (%d bytes, format %d)\n", rep.File, rep.FileSize, rep.Version)
	fmt.Fprintf(w, "kind       %s: %s\n", rep.Kind, rep.Guest)
	fmt.Fprintf(w, "created    %s by %s\n", rep.Created.Format(time.RFC3339), rep.Producer)
	switch {
	case rep.Trusted:
		fmt.Fprintf(w, "signed     by %s, trusted here\n", rep.SignedBy)
	default:
		fmt.Fprintf(w, "signed     NOT TRUSTED: %s\n", rep.Distrust)
	}
	if rep.ModuleSize > 0 {
		fmt.Fprintf(w, "module     sha256 %s, %d bytes, embedded\n", rep.ModuleSHA256, rep.ModuleSize)
	} else {
		fmt.Fprintf(w, "module     sha256 %s, not embedded\n", rep.ModuleSHA256)
	}
	fmt.Fprintf(w, "memory     %d pages (%d KiB): %d zero, %d stored in %d bytes\n",
		rep.MemoryPages, rep.MemoryPages*64, rep.ZeroPages, rep.MemoryPages-rep.ZeroPages, rep.StoredBytes)
	for _, g := range rep.Globals {
		fmt.Fprintf(w, "global %-3d %s %#x\n", g.Index, g.Type, g.Value)
	}
	fmt.Fprintf(w, "args       %q\n", rep.Args)
	if len(rep.Env) > 0 {
		fmt.Fprintf(w, "env        %q\n", rep.Env)
	}
	for _, p := range rep.Preopens {
		fmt.Fprintf(w, "preopen    %s -> host %s\n", p.GuestPath, p.HostDir)
	}
	for _, f := range rep.FDs {
		switch {
		case f.Kind == "file":
			fmt.Fprintf(w, "fd %-7d %s %s at offset %d\n", f.FD, f.Kind, f.Path, f.Offset)
		case f.Path != "":
			fmt.Fprintf(w, "fd %-7d %s %s\n", f.FD, f.Kind, f.Path)
		default:
			fmt.Fprintf(w, "fd %-7d %s\n", f.FD, f.Kind)
		}
	}
	fmt.Fprintf(w, "clock      monotonic %v\n", time.Duration(rep.MonotonicNS))
	fmt.Fprintf(w, "stdin      %d bytes read\n", rep.StdinRead)
	return nil
}
