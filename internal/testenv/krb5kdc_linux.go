package testenv

import "syscall"

// krb5kdcProcAttr makes krb5kdc die with the test binary, also when the
// binary is killed before any t.Cleanup runs.
func krb5kdcProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
