# Shared by the benchmark scripts (sourced).

# fresh_ext4 IMG SIZE MNT: a new journaled ext4 file system in the loop image IMG, mounted on MNT
# (unmounting what was there). A timed run on a reused file system right after another run's
# removal of tens of thousands of files pays for ext4 reclaiming them (load.sh measured 6-13 %).
# Inode tables and journal are written now, not by ext4's lazy-init thread during the next run.
fresh_ext4() {
  local img=$1 size=$2 mnt=$3
  if mountpoint -q "$mnt"; then umount "$mnt"; fi
  truncate -s 0 "$img"
  truncate -s "$size" "$img"
  mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$img"
  mount -o loop "$img" "$mnt"
  sync
}
