# `make backup`: the three databases of `make run`'s cluster into backups/<UTC time>/ (pg_dump
# -Fc, git-ignored); `make restore FILE=backups/<time>`: drops them and recreates them from
# those dumps (stop `make run` first).  Both run the chart's script through scripts/backup.sh;
# helm/meeting-rooms/README.md "Backups" describes the procedure and what happens to Kafka.
.PHONY: backup restore

backup:
	$(Q)scripts/backup.sh backup

restore:
	$(Q)scripts/backup.sh restore "$(FILE)"
