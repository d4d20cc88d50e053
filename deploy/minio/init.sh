#!/bin/sh
# One-shot set-up of the object store (the `object-store-init` service of
# docker-compose.yml), safe to rerun:
#   - the bucket the Zarr stores live in;
#   - its anonymous access (S3_BUCKET_POLICY: `download` = anyone may read, which is
#     what the example mapping tells readers; `none` = private);
#   - a read-only user for the loader (list + get on that bucket only), so that the
#     crawler never holds the root credentials.
# Runs in the minio/mc image, whose shell is minimal: POSIX sh built-ins only.
set -eu

: "${S3_INTERNAL_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${S3_BUCKET:?}" "${S3_BUCKET_POLICY:?}" "${S3_ACCESS_KEY:?}" "${S3_SECRET_KEY:?}"

mc alias set local "$S3_INTERNAL_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "local/$S3_BUCKET"
mc anonymous set "$S3_BUCKET_POLICY" "local/$S3_BUCKET"

policy=/tmp/zarr-stac-loader.json
printf '%s\n' \
  '{' \
  '  "Version": "2012-10-17",' \
  '  "Statement": [' \
  "    {\"Effect\": \"Allow\", \"Action\": [\"s3:GetBucketLocation\", \"s3:ListBucket\"], \"Resource\": [\"arn:aws:s3:::$S3_BUCKET\"]}," \
  "    {\"Effect\": \"Allow\", \"Action\": [\"s3:GetObject\"], \"Resource\": [\"arn:aws:s3:::$S3_BUCKET/*\"]}" \
  '  ]' \
  '}' > "$policy"
mc admin policy create local zarr-stac-loader "$policy"
mc admin user add local "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
# Attaching twice is an error: on a rerun, check that the policy is attached instead.
if ! mc admin policy attach local zarr-stac-loader --user "$S3_ACCESS_KEY"; then
  case "$(mc admin user info local "$S3_ACCESS_KEY")" in
    *zarr-stac-loader*) ;;
    *) echo "could not attach the zarr-stac-loader policy to $S3_ACCESS_KEY" >&2; exit 1 ;;
  esac
fi
echo "bucket $S3_BUCKET ready (anonymous: $S3_BUCKET_POLICY); loader user $S3_ACCESS_KEY is read-only"
