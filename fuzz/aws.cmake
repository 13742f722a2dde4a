ck_fuzz_target(fuzz_aws_xml ck_aws)
