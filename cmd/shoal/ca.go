package main

import (
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalhq/shoal/identity"
)

// newCACommand is `shoal ca`: the cluster certificate authority that binds each
// node's name to its own key (see docs/cluster-identity.md).
func newCACommand() *cobra.Command {
	ca := &cobra.Command{
		Use:   "ca",
		Short: "Create the cluster CA and node certificates",
		Long: `A Shoal cluster trusts a node's records only when that node signed them with a key
whose certificate the cluster CA issued for the node's name. Create the CA once
(keep ca.key offline), then a certificate per node; give every node ca.crt and
its own node.crt and node.key (shoal agent --ca-cert --node-cert --node-key).`,
	}

	var dir, caName string
	var caDays int
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new cluster CA: ca.key and ca.crt in --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := identity.InitCA(dir, caName, time.Duration(caDays)*24*time.Hour, time.Now()); err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s (keep it secret, ideally offline) and %s (give it to every node)\n",
				filepath.Join(dir, identity.CAKeyFile), filepath.Join(dir, identity.CACertFile))
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "", "directory for ca.key and ca.crt (created if absent)")
	initCmd.Flags().StringVar(&caName, "name", "Shoal cluster CA", "the CA's common name")
	initCmd.Flags().IntVar(&caDays, "days", int(identity.DefaultCAValidity/(24*time.Hour)), "validity in days")
	initCmd.MarkFlagRequired("dir")

	var caDir, node, out string
	var ips []net.IP
	var nodeDays int
	issueCmd := &cobra.Command{
		Use:   "issue",
		Short: "Create a node's key and certificate, signed by the CA: node.key and node.crt in --out",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			serial, err := identity.Issue(caDir, node, ips, time.Duration(nodeDays)*24*time.Hour, out, time.Now())
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s and %s for node %q, serial %s (revoke with the line \"serial %s\")\n",
				filepath.Join(out, identity.NodeCertFile), filepath.Join(out, identity.NodeKeyFile), node, serial, serial)
			return nil
		},
	}
	fl := issueCmd.Flags()
	fl.StringVar(&caDir, "ca-dir", "", "directory of the CA (shoal ca init --dir)")
	fl.StringVar(&node, "node", "", "the node's name, as given to shoal agent --node")
	fl.IPSliceVar(&ips, "ip", nil, "an IP address of the node, for TLS clients that connect by address (repeatable)")
	fl.StringVar(&out, "out", "", "directory for node.key and node.crt (created if absent)")
	fl.IntVar(&nodeDays, "days", int(identity.DefaultNodeValidity/(24*time.Hour)), "validity in days")
	for _, name := range []string{"ca-dir", "node", "out"} {
		issueCmd.MarkFlagRequired(name)
	}

	ca.AddCommand(initCmd, issueCmd)
	return ca
}
