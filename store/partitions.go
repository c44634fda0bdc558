package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/ingest"
)

var _ ingest.PartitionRepository = (*DB)(nil)

// ClaimPartitions makes owner the owner of each of partitions and bumps
// their epochs, then reads the topic's stored positions, in one
// transaction. On PostgreSQL the upsert locks each partition's row, so it
// waits for a batch that holds the row FOR SHARE (see checkEpochs) and the
// positions read after it include that batch's; a batch checking its epoch
// after the commit finds the new one. Rows are locked in partition order,
// so two claimers cannot deadlock. On SQLite the immediate transaction
// holds the database's write lock, which every batch takes too.
func (db *DB) ClaimPartitions(ctx context.Context, asset, topic, owner string, partitions []int32) (*ingest.Claim, error) {
	var bad []soarkafka.FieldError
	if asset == "" {
		bad = append(bad, soarkafka.FieldError{Field: "asset", Message: "is empty"})
	}
	if topic == "" {
		bad = append(bad, soarkafka.FieldError{Field: "topic", Message: "is empty"})
	}
	if owner == "" {
		bad = append(bad, soarkafka.FieldError{Field: "owner", Message: "is empty; name the replica that reads the partitions"})
	}
	for _, p := range partitions {
		if p < 0 {
			bad = append(bad, soarkafka.FieldError{Field: "partitions", Message: fmt.Sprintf("partition %d: want >= 0", p)})
		}
	}
	if len(bad) > 0 {
		return nil, &soarkafka.Error{Code: soarkafka.EINVALID, Message: fmt.Sprintf("claim partitions of asset %q, topic %q", asset, topic), Fields: bad}
	}
	parts := slices.Clone(partitions)
	slices.Sort(parts)
	parts = slices.Compact(parts)
	now := db.dialect.timeArg(db.now())
	claim := &ingest.Claim{}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		claim.Epochs = make(map[int32]int64, len(parts))
		for _, p := range parts {
			var epoch int64
			if err := tx.QueryRowContext(ctx, db.dialect.rebind(`
				INSERT INTO ingest_partition_owners (asset, topic, partition, owner, epoch, claimed_at)
				VALUES ($1, $2, $3, $4, 1, $5)
				ON CONFLICT (asset, topic, partition) DO UPDATE
				SET owner = excluded.owner, epoch = ingest_partition_owners.epoch + 1, claimed_at = excluded.claimed_at
				RETURNING epoch`), asset, topic, p, owner, now).Scan(&epoch); err != nil {
				return err
			}
			claim.Epochs[p] = epoch
		}
		offsets, err := db.offsets(ctx, tx, asset, topic)
		claim.Offsets = offsets
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim partitions %v of asset %q, topic %q for %s: %w", parts, asset, topic, owner, err)
	}
	return claim, nil
}

// checkEpochs is SaveBatch's per-partition fence: an ECONFLICT unless each
// partition the batch names still has the epoch the batch carries. On
// PostgreSQL FOR SHARE keeps the rows as they are until the batch commits,
// so a claim (which locks them to bump the epoch) waits for the batch, and
// a batch that comes after the claim finds the new epoch.
func (db *DB) checkEpochs(ctx context.Context, tx *sql.Tx, b *ingest.Batch) error {
	if b.Epochs == nil {
		return nil
	}
	lock := ""
	if db.dialect.name == "postgres" {
		lock = " FOR SHARE"
	}
	parts := make([]int32, 0, len(b.Epochs))
	for p := range b.Epochs {
		parts = append(parts, p)
	}
	slices.Sort(parts) // the claimers' order
	for _, p := range parts {
		want := b.Epochs[p]
		var (
			epoch int64
			owner string
		)
		err := tx.QueryRowContext(ctx, db.dialect.rebind(`
			SELECT epoch, owner FROM ingest_partition_owners WHERE asset = $1 AND topic = $2 AND partition = $3`+lock),
			b.Asset, b.Topic, p).Scan(&epoch, &owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return soarkafka.Errorf(soarkafka.ECONFLICT,
				"asset %q, topic %s, partition %d: the batch carries epoch %d but the partition was never claimed; nothing of this batch was stored",
				b.Asset, b.Topic, p, want)
		case err != nil:
			return err
		case epoch != want:
			return soarkafka.Errorf(soarkafka.ECONFLICT,
				"asset %q, topic %s, partition %d: this replica no longer owns the partition (its epoch %d ended; %s owns it at epoch %d after a rebalance); nothing of this batch was stored",
				b.Asset, b.Topic, p, want, owner, epoch)
		}
	}
	return nil
}

// epochsCover reports, as field errors, the partitions a batch with
// epochs names in its offsets, gaps or dead letters without an epoch.
func epochsCover(b *ingest.Batch) []soarkafka.FieldError {
	if b.Epochs == nil {
		return nil
	}
	var bad []soarkafka.FieldError
	check := func(field string, p int32) {
		if _, ok := b.Epochs[p]; !ok {
			bad = append(bad, soarkafka.FieldError{Field: field,
				Message: fmt.Sprintf("partition %d has no epoch: a batch with epochs must carry one for every partition it names", p)})
		}
	}
	for i, o := range b.Offsets {
		check(fmt.Sprintf("offsets[%d]", i), o.Partition)
	}
	for i, g := range b.Gaps {
		check(fmt.Sprintf("gaps[%d]", i), g.Partition)
	}
	for i, d := range b.DeadLetters {
		check(fmt.Sprintf("dead_letters[%d]", i), d.Partition)
	}
	return bad
}
