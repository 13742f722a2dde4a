# Mail module fuzz targets (shared by the mail engineers: append yours).
ck_fuzz_target(fuzz_spf ck_mail)
ck_fuzz_target(fuzz_dns_rdata ck_mail)
ck_fuzz_target(fuzz_smtp_reply ck_mail)
ck_fuzz_target(fuzz_dkim_tags ck_mail)
ck_fuzz_target(fuzz_dkim_signature ck_mail)
ck_fuzz_target(fuzz_dkim_verify ck_mail)
