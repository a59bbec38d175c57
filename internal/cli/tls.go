package cli

import (
	"github.com/spf13/cobra"
)

func newTLSCmd() *cobra.Command {
	flags := defaultSettings()
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Capture TLS plaintext from programs using OpenSSL or GnuTLS (root)",
		Long: `Capture the plaintext of every SSL_read/SSL_write(_ex) and gnutls_record_send/recv call
of programs using OpenSSL or GnuTLS, with eBPF uprobes and the connection's addresses learned
in the kernel (no kprobes needed). Needs root (CAP_BPF + CAP_PERFMON). By default attaches to
the system's libssl (1.1 and 3) and libgnutls, to every such library running processes have
mapped, and, as processes start or load libraries later, to every file that exports OpenSSL's
or GnuTLS's functions (private copies, containers, node).

Not seen: programs that drive TLS through OpenSSL's SSL BIO (e.g. 'openssl s_server -www'),
Go programs (crypto/tls) and NSS.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, &flags, source{live: true})
		},
	}
	registerFlags(cmd.Flags(), onTLS, &flags)
	return cmd
}
