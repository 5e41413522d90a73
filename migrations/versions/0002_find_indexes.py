"""C-FIND indexes: every query key answered by an index at 1,000,000 instances.

Person names are matched per component group (alphabetic=ideographic=phonetic),
case-insensitively by default, with wildcards anywhere: each group gets a
B-tree on lower() with text_pattern_ops (prefix `DOE*`, any collation) and a
trigram GIN index (`*DOE*`, `*^JOHN`). Other LIKE-able keys get
text_pattern_ops B-trees; dates keep 0001's (study_date, study_time) B-tree.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_GROUPS = (1, 2, 3)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for n in _GROUPS:
        group = f"split_part(patient_name, '=', {n})"
        op.execute(
            f"CREATE INDEX patients_name_g{n}_lower_idx "
            f"ON patients (lower({group}) text_pattern_ops)"
        )
        op.execute(
            f"CREATE INDEX patients_name_g{n}_trgm_idx "
            f"ON patients USING gin (lower({group}) gin_trgm_ops)"
        )
        op.execute(f"CREATE INDEX patients_name_g{n}_idx ON patients ({group} text_pattern_ops)")
    op.execute(
        """
        CREATE INDEX patients_id_pattern_idx ON patients (patient_id text_pattern_ops);
        CREATE INDEX patients_birth_date_idx ON patients (patient_birth_date);
        CREATE INDEX studies_accession_pattern_idx ON studies (accession_number text_pattern_ops);
        CREATE INDEX studies_study_id_idx ON studies (study_id);
        CREATE INDEX studies_description_trgm_idx ON studies
            USING gin (study_description gin_trgm_ops);
        CREATE INDEX series_study_modality_idx ON series (study_fk, modality);
        CREATE INDEX series_modality_study_idx ON series (modality, study_fk);
        CREATE INDEX instances_sop_class_idx ON instances (sop_class_uid);
        """
    )


def downgrade() -> None:
    for n in _GROUPS:
        for suffix in ("lower_idx", "trgm_idx", "idx"):
            op.execute(f"DROP INDEX IF EXISTS patients_name_g{n}_{suffix}")
    op.execute(
        """
        DROP INDEX IF EXISTS patients_id_pattern_idx, patients_birth_date_idx,
            studies_accession_pattern_idx, studies_study_id_idx,
            studies_description_trgm_idx, series_study_modality_idx,
            series_modality_study_idx, instances_sop_class_idx
        """
    )
