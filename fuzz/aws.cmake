ck_fuzz_target(fuzz_aws_xml ck_aws)
ck_fuzz_target(fuzz_s3_list ck_aws_core)
