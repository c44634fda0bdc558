//go:build !linux

package testenv

import "syscall"

// krb5kdcProcAttr has nothing to add where Pdeathsig does not exist: the
// KDC is stopped by t.Cleanup only.
func krb5kdcProcAttr() *syscall.SysProcAttr { return nil }
