use std::time::SystemTime;

use super::*;
use crate::runtime::protocol::Failure;

fn exited(code: i32) -> ExitStatus {
    ExitStatus::from_raw(code << 8)
}

#[test]
fn a_guest_set_up_failure_is_never_a_command_exit_code() {
    let state = Shared {
        entered_at: Some(SystemTime::now()),
        exit_source: Some(ExitSource::Guest(125)),
        ..Shared::default()
    };
    let failed = Report::Failed {
        step: crate::error::GuestStep::Mount { index: 1 },
        errno: libc::ENODEV,
        detail: "/data".into(),
    };
    match classify(exited(125), false, &state, Ok(failed)) {
        Err(e @ MonocoreError::GuestSetup { .. }) => assert_eq!(
            e.to_string(),
            "the guest cannot mount mapped_dirs[1] at /data: No such device"
        ),
        other => panic!("{other:?}"),
    }
    match classify(exited(137), false, &state, Err(ReportError::Missing)) {
        Err(e @ MonocoreError::GuestAgentSilent { exit_code: 125, .. }) => {
            assert_eq!(
                crate::ErrorChain(&e).to_string(),
                "the guest agent ended (VM exit code 125) before it ran the command: it wrote no report"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn classification_never_confuses_vmm_failure_with_guest_code() {
    let mut state = Shared {
        entered_at: Some(SystemTime::now()),
        ..Shared::default()
    };
    state.exit_source = Some(ExitSource::Guest(1));
    assert_eq!(
        classify(exited(1), false, &state, Ok(Report::Ready))
            .unwrap()
            .code(),
        Some(1)
    );

    state.exit_source = Some(ExitSource::Vcpu(1));
    state.last_vmm_error = Some("Received KVM_EXIT_INTERNAL_ERROR signal".into());
    match classify(exited(1), false, &state, Ok(Report::Ready)) {
        Err(MonocoreError::BootFailed {
            last_error_line,
            vmm_exit_code: 1,
        }) => assert_eq!(last_error_line, "Received KVM_EXIT_INTERNAL_ERROR signal"),
        other => panic!("{other:?}"),
    }

    state.exit_source = None;
    assert!(matches!(
        classify(exited(0), false, &state, Ok(Report::Ready)),
        Err(MonocoreError::BootFailed { .. })
    ));
    state.entered_at = None;
    assert!(matches!(
        classify(exited(70), false, &state, Ok(Report::Ready)),
        Err(MonocoreError::Helper(HelperError::Exited { code: 70, .. }))
    ));
    state.failure = Some(Failure::Krun {
        call: "krun_set_root",
        errno: 22,
    });
    assert!(matches!(
        classify(exited(70), false, &state, Ok(Report::Ready)),
        Err(MonocoreError::Krun {
            call: "krun_set_root",
            errno: 22
        })
    ));

    let killed = classify(
        ExitStatus::from_raw(libc::SIGKILL),
        true,
        &Shared::default(),
        Ok(Report::Ready),
    )
    .unwrap();
    assert_eq!(
        (killed.code(), killed.signal()),
        (None, Some(libc::SIGKILL))
    );
    assert_eq!(killed.to_string(), "VM killed by signal 9");
    assert!(matches!(
        classify(
            ExitStatus::from_raw(libc::SIGABRT),
            false,
            &Shared::default(),
            Ok(Report::Ready)
        ),
        Err(MonocoreError::BootFailed { .. })
    ));
}

#[test]
fn a_vm_ended_at_its_time_to_live_is_that_not_a_guest_code() {
    // The helper says so on its private channel; a guest that exits with
    // the helper's code (72) on its own is a guest code.
    let mut state = Shared {
        entered_at: Some(SystemTime::now()),
        ..Shared::default()
    };
    state.exit_source = Some(ExitSource::Guest(72));
    assert_eq!(
        classify(exited(72), false, &state, Ok(Report::Ready))
            .unwrap()
            .code(),
        Some(72)
    );
    state.exit_source = None;
    state.expired = Some(std::time::Duration::from_secs(30));
    match classify(exited(72), false, &state, Ok(Report::Ready)) {
        Err(e @ MonocoreError::VmExpired { time_to_live }) => {
            assert_eq!(time_to_live, std::time::Duration::from_secs(30));
            assert_eq!(
                e.to_string(),
                "the VM reached its time to live of 30s and was ended"
            );
        }
        other => panic!("{other:?}"),
    }
}
