package kafka

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"

	krb5client "github.com/jcmturner/gokrb5/v8/client"
	krb5config "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/kerberos"

	"github.com/soarkafka/soarkafka/assets"
)

// kerberosMechanism builds SASL GSSAPI from the asset's kerberos block. The
// login is gokrb5's, in this process: with a keytab or a password the
// client renews its ticket by itself before it expires (at 5/6 of its
// life), so a long-running asset needs no kinit and no cron job. With a
// ticket cache that the site's own kinit keeps fresh, the cache is read
// again for every login, since a client built from a cache cannot renew.
//
// Errors name the kerberos field at fault; the login itself happens on
// the first connection, where its errors are worded by KerberosHint.
func (a Access) kerberosMechanism(cfg assets.Config) (sasl.Mechanism, error) {
	k := cfg.Kerberos
	krbCfg, err := krb5Conf(k, a.Files)
	if err != nil {
		return nil, err
	}
	if err := a.checkKDCs(krbCfg); err != nil {
		return nil, err
	}
	service := k.ServiceName
	if service == "" {
		service = "kafka"
	}
	user, realm := splitPrincipal(k.Principal, k.Realm, krbCfg.LibDefaults.DefaultRealm)
	if user != "" && realm == "" {
		return nil, fieldError("kerberos.principal", "%q has no realm and none is configured: write it as %s@REALM, or set kerberos.realm", k.Principal, user)
	}
	// FAST is off as in MIT's kinit without armor: a KDC that does not
	// offer it would otherwise refuse the login.
	opts := []func(*krb5client.Settings){krb5client.DisablePAFXFAST(true)}

	var mech sasl.Mechanism
	switch {
	case k.Keytab != "" || k.KeytabPath != "":
		kt, err := loadKeytab(k, a.Files)
		if err != nil {
			return nil, err
		}
		cl := krb5client.NewWithKeytab(user, realm, kt, krbCfg, opts...)
		mech = kerberos.Auth{Client: cl, Service: service}.AsMechanismWithClose()
	case k.Password != "":
		cl := krb5client.NewWithPassword(user, realm, k.Password, krbCfg, opts...)
		mech = kerberos.Auth{Client: cl, Service: service}.AsMechanismWithClose()
	case k.CCachePath != "":
		if _, err := a.Files.ReadFile("kerberos.ccache_path", k.CCachePath); err != nil {
			return nil, err
		}
		path, files := k.CCachePath, a.Files
		mech = kerberos.Kerberos(func(context.Context) (kerberos.Auth, error) {
			cc, err := loadCCache(files, path)
			if err != nil {
				return kerberos.Auth{}, err
			}
			cl, err := krb5client.NewFromCCache(cc, krbCfg, opts...)
			if err != nil {
				return kerberos.Auth{}, fmt.Errorf("kerberos.ccache_path: ticket cache %s: %w (run kinit again)", path, err)
			}
			return kerberos.Auth{Client: cl, Service: service}, nil
		})
	default:
		return nil, fieldError("kerberos.keytab", "GSSAPI needs the principal's credentials: give kerberos.keytab, kerberos.keytab_path, kerberos.password or kerberos.ccache_path")
	}
	if k.CanonicalizeHostname {
		mech = canonicalHost{Mechanism: mech, resolver: net.DefaultResolver}
	}
	return mech, nil
}

// krb5Conf returns the Kerberos configuration: krb5_conf as a path or as
// the file's text, or a minimal one for realm and kdc. Nothing reads
// /etc/krb5.conf unless krb5_conf names it.
func krb5Conf(k assets.Kerberos, files *FilePolicy) (*krb5config.Config, error) {
	switch {
	case k.Krb5Conf != "" && k.Krb5ConfInline():
		c, err := krb5config.NewFromString(k.Krb5Conf)
		if err != nil {
			return nil, fieldError("kerberos.krb5_conf", "the krb5.conf text does not parse: %v", err)
		}
		return c, nil
	case k.Krb5Conf != "":
		b, err := files.ReadFile("kerberos.krb5_conf", k.Krb5Conf)
		if err != nil {
			return nil, err
		}
		c, err := krb5config.NewFromString(string(b))
		if err != nil {
			return nil, fieldError("kerberos.krb5_conf", "%s does not parse: %v", k.Krb5Conf, err)
		}
		return c, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n\n[realms]\n %s = {\n", k.Realm, k.Realm)
	for _, kdc := range strings.Split(k.KDC, ",") {
		if kdc = strings.TrimSpace(kdc); kdc != "" {
			if _, _, err := net.SplitHostPort(kdc); err != nil {
				kdc = net.JoinHostPort(kdc, "88")
			}
			fmt.Fprintf(&b, "  kdc = %s\n", kdc)
		}
	}
	b.WriteString(" }\n")
	c, err := krb5config.NewFromString(b.String())
	if err != nil {
		return nil, fieldError("kerberos.kdc", "%v", err)
	}
	return c, nil
}

// splitPrincipal splits "user@REALM"; without a realm it takes realm, then
// the configuration's default.
func splitPrincipal(principal, realm, defaultRealm string) (string, string) {
	if user, r, ok := strings.Cut(principal, "@"); ok {
		return user, r
	}
	if realm == "" {
		realm = defaultRealm
	}
	return principal, realm
}

func loadKeytab(k assets.Kerberos, files *FilePolicy) (*keytab.Keytab, error) {
	if k.KeytabPath != "" {
		b, err := files.ReadFile("kerberos.keytab_path", k.KeytabPath)
		if err != nil {
			return nil, err
		}
		kt := keytab.New()
		if err := kt.Unmarshal(b); err != nil {
			return nil, fieldError("kerberos.keytab_path", "%s is not a keytab: %v", k.KeytabPath, err)
		}
		return kt, nil
	}
	b, err := base64.StdEncoding.DecodeString(k.Keytab)
	if err != nil {
		return nil, fieldError("kerberos.keytab", "is not base64; give the keytab file's content base64-encoded (base64 -w0 client.keytab)")
	}
	kt := keytab.New()
	if err := kt.Unmarshal(b); err != nil {
		return nil, fieldError("kerberos.keytab", "is not a keytab: %v", err)
	}
	return kt, nil
}

// loadCCache reads the ticket cache at path through the file policy, at
// each login, so that the site's kinit can renew it.
func loadCCache(files *FilePolicy, path string) (*credentials.CCache, error) {
	b, err := files.ReadFile("kerberos.ccache_path", path)
	if err != nil {
		return nil, err
	}
	cc := new(credentials.CCache)
	if len(b) == 0 {
		return nil, fmt.Errorf("kerberos.ccache_path: ticket cache %s is empty (run kinit again)", path)
	}
	if err := cc.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("kerberos.ccache_path: read ticket cache %s: %w", path, err)
	}
	return cc, nil
}

// checkKDCs refuses a Kerberos configuration whose KDCs the host policy
// does not allow. gokrb5 dials the KDCs itself, with no dialer to hook, so
// each KDC's name and the addresses it resolves to now are checked before
// the client is built; a KDC found through DNS (dns_lookup_kdc) cannot be
// checked and is refused while a policy is set.
func (a Access) checkKDCs(c *krb5config.Config) error {
	if a.Hosts == nil {
		return nil
	}
	if c.LibDefaults.DNSLookupKDC {
		return fieldError("kerberos.krb5_conf", "dns_lookup_kdc cannot be used while %s or %s is set: list the KDCs of the realm (kdc = host:port)", SettingAllowedHosts, SettingDeniedHosts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDialTimeout)
	defer cancel()
	for _, r := range c.Realms {
		for _, kdc := range r.KDC {
			if _, _, err := net.SplitHostPort(kdc); err != nil {
				kdc = net.JoinHostPort(kdc, "88")
			}
			err := a.Hosts.CheckResolved(ctx, kdc)
			var denied *HostDeniedError
			switch {
			case errors.As(err, &denied) && denied.Address != "":
				return fieldError("kerberos.kdc", "KDC %s (address %s) of realm %s: not allowed by %s", kdc, denied.Address, r.Realm, denied.Setting)
			case errors.As(err, &denied):
				return fieldError("kerberos.kdc", "KDC %s of realm %s: not allowed by %s", kdc, r.Realm, denied.Setting)
			case err != nil:
				return fieldError("kerberos.kdc", "KDC %s of realm %s: %v", kdc, r.Realm, err)
			}
		}
	}
	return nil
}

func pathReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// canonicalHost asks for the ticket of the broker's canonical DNS name
// (kerberos.canonicalize_hostname), as MIT's rdns/dns_canonicalize_hostname
// do: the CNAME target, without the trailing dot.
type canonicalHost struct {
	sasl.Mechanism
	resolver *net.Resolver
}

func (c canonicalHost) Authenticate(ctx context.Context, host string) (sasl.Session, []byte, error) {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, ""
	}
	if net.ParseIP(name) == nil {
		if cname, err := c.resolver.LookupCNAME(ctx, name); err == nil && cname != "" {
			name = strings.TrimSuffix(cname, ".")
		}
	}
	if port != "" {
		name = net.JoinHostPort(name, port)
	}
	return c.Mechanism.Authenticate(ctx, name)
}

// Close closes the wrapped mechanism's Kerberos client with the kgo
// client.
func (c canonicalHost) Close() {
	if cm, ok := c.Mechanism.(sasl.ClosingMechanism); ok {
		cm.Close()
	}
}
