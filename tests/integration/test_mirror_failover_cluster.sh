#!/usr/bin/env bash
# test_mirror_failover_etcd.sh against a three-member etcd (three processes
# on the service LAN's namespace, distinct ports): one member SIGKILLed under
# a write load changes nothing the client sees (the primary keeps the key
# through the quorum of two), and a SIGKILL of the primary then still fails
# over to the standby with no acknowledged write lost.
CK_ETCD_MEMBERS=3 exec bash "$(dirname "$0")/test_mirror_failover_etcd.sh"
